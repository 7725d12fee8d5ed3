"""SEPA direct-debit batches: open per legal entity, closed into a validated pain.008.001.08 file."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from importlib import resources

from lxml import etree
from sepaxml import SepaDD
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.money import round_money
from app.errors import BatchError
from app.extensions import db
from app.models import Collection, Customer, Invoice, LegalEntity, SepaBatch, SepaBatchItem
from app.models.types import utcnow
from app.payments import target2


def open_batch(entity_id: int) -> SepaBatch:
    """The entity's open batch, created when there is none (one open batch per entity, by index)."""
    for _ in range(3):
        # Locked: a batch being closed (close_batch holds this row) is waited for, then no longer open, so a debit
        # never lands in a batch whose file is already written.
        batch = db.session.scalar(select(SepaBatch).where(SepaBatch.legal_entity_id == entity_id,
                                                          SepaBatch.status == "open").with_for_update())
        if batch is not None:
            return batch
        savepoint = db.session.begin_nested()
        try:
            batch = SepaBatch(legal_entity_id=entity_id, status="open")
            db.session.add(batch)
            db.session.flush()
            savepoint.commit()
            return batch
        except IntegrityError:  # another worker opened one meanwhile
            savepoint.rollback()
    raise BatchError("could not open a SEPA batch: try again")


def add_to_open_batch(invoice: Invoice, collection: Collection) -> SepaBatchItem:
    """Put the invoice's amount due into the open batch (once per batch)."""
    batch = open_batch(invoice.legal_entity_id)
    existing = db.session.scalar(select(SepaBatchItem).where(SepaBatchItem.batch_id == batch.id,
                                                             SepaBatchItem.invoice_id == invoice.id))
    if existing is not None:
        return existing
    attempt = collection.attempts + 1
    item = SepaBatchItem(batch_id=batch.id, invoice_id=invoice.id, collection_id=collection.id,
                         amount=invoice.amount_due, end_to_end_id=f"{invoice.number}-{attempt}"[:35],
                         attempt=attempt, status="pending")
    db.session.add(item)
    db.session.flush()
    return item


SCHEMA = "pain.008.001.08"


@lru_cache(maxsize=1)
def _xsd_document() -> etree._ElementTree:
    return etree.parse(str(resources.files("sepaxml") / "schemas" / f"{SCHEMA}.xsd"))


def _validated(xml: bytes, batch: SepaBatch) -> bytes:
    """Checked against sepaxml's copy of the ISO 20022 schema by libxml2 (sepaxml's own check, in pure Python,
    takes seconds for a few thousand debits). A schema object per call: its error log is not shared by threads."""
    schema = etree.XMLSchema(_xsd_document())
    if not schema.validate(etree.fromstring(xml)):
        problems = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
        raise BatchError(f"the {SCHEMA} file of batch #{batch.id} does not validate ({problems}): "
                         "correct the customer or legal entity data it names")
    return xml


def message_id_for(entity: LegalEntity, batch: SepaBatch, today: date) -> str:
    """The GrpHdr/MsgId of the batch's file: also its stored id, its file name and what the bank quotes back."""
    return f"ARB{entity.code}{batch.id:06d}{today:%Y%m%d}"[:35]


def file_name(batch: SepaBatch) -> str:
    return f"{batch.message_id}.xml"


def collected_mandates(mandate_references: set[str]) -> set[tuple[str, str]]:
    """(mandate reference, debtor IBAN) pairs among these references that a debit was collected under."""
    if not mandate_references:
        return set()
    return set(db.session.execute(
        select(SepaBatchItem.mandate_reference, SepaBatchItem.debtor_iban).distinct()
        .where(SepaBatchItem.status == "collected", SepaBatchItem.mandate_reference.in_(mandate_references))).tuples())


def sequence_type(mandate_reference: str, debtor_iban: str, collected: set[tuple[str, str]]) -> str:
    """SEPA Core rulebook: FRST for the first collection under a mandate, RCUR after. A changed mandate reference
    or debtor IBAN is an amendment; sepaxml cannot write AmdmntInd, so a debit under a mandate reference and IBAN
    never collected before is sent as a first collection (FRST) instead (docs/architecture.md)."""
    return "RCUR" if (mandate_reference, debtor_iban) in collected else "FRST"


def _not_to_debit(invoice: Invoice, customer: Customer) -> str | None:
    """Why the invoice must not be debited now, or None when it is still due by direct debit."""
    if invoice.status != "issued":
        return f"invoice {invoice.number} is {invoice.status}"
    if invoice.amount_due <= 0:
        return f"nothing is due on invoice {invoice.number} any more (paid or collected elsewhere)"
    if customer.payment_method != "sepa_debit" or not (customer.iban and customer.mandate_reference
                                                       and customer.mandate_date):
        return f"{customer.name} no longer pays by SEPA direct debit (payment method, IBAN or mandate changed)"
    return None


def _reread(batch: SepaBatch, item: SepaBatchItem, invoice: Invoice, customer: Customer) -> None:
    """Withdraw the debit when its invoice is no longer due, else make it exactly the amount due now."""
    reason = _not_to_debit(invoice, customer)
    if reason is not None:
        item.status, item.resolved_at = "withdrawn", utcnow()
        item.note = f"withdrawn when batch #{batch.id} was closed: {reason}"
    elif item.amount != invoice.amount_due:
        item.note = (f"{item.amount} changed to {invoice.amount_due} when batch #{batch.id} was closed: "
                     f"the amount due on invoice {invoice.number}")
        item.amount = invoice.amount_due


def _creditor_missing(entity: LegalEntity) -> None:
    missing = [label for label, value in (("SEPA creditor id", entity.sepa_creditor_id), ("IBAN", entity.iban),
                                          ("BIC", entity.bic)) if not value]
    if missing:
        raise BatchError(f"{entity.code} has no {', '.join(missing)}: add them under Settings > Legal entities")


def _lead_days(entity: LegalEntity, lead_days: int | None) -> int:
    if lead_days is not None:
        return lead_days
    from app.payments.collection import lead_days as entity_lead_days

    return entity_lead_days(entity)


def _pending_with_parties(batch: SepaBatch, *, lock: bool) -> tuple[list[SepaBatchItem], dict[int, Invoice],
                                                                     dict[int, Customer]]:
    pending = [i for i in batch.items if i.status == "pending"]
    query = select(Invoice).where(Invoice.id.in_([i.invoice_id for i in pending])).order_by(Invoice.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    invoices = {invoice.id: invoice for invoice in db.session.scalars(query)}
    customers = {customer.id: customer for customer in db.session.scalars(
        select(Customer).where(Customer.id.in_({invoice.customer_id for invoice in invoices.values()})))}
    return pending, invoices, customers


# ------------------------------------------------------------------ what closing would do (the confirm step)
@dataclass(frozen=True)
class DebitPreview:
    item: SepaBatchItem
    invoice: Invoice
    customer: Customer
    amount: Decimal  # what would be debited (the amount due now), or what the item held if it drops out
    collection_date: date | None
    drops_out: str | None = None  # why it would be withdrawn


@dataclass
class ClosePreview:
    batch: SepaBatch
    today: date
    lead_days: int
    debits: list[DebitPreview] = field(default_factory=list)
    dropped: list[DebitPreview] = field(default_factory=list)
    problem: str | None = None  # why the batch cannot be closed now (creditor data missing, no debits left)

    @property
    def totals(self) -> dict[str, Decimal]:
        return {"EUR": round_money(sum((d.amount for d in self.debits), Decimal(0)), "EUR")} if self.debits else {}

    @property
    def dates(self) -> list[tuple[date, int]]:
        """Each collection date with how many debits fall on it, earliest first."""
        counts: dict[date, int] = {}
        for debit in self.debits:
            counts[debit.collection_date] = counts.get(debit.collection_date, 0) + 1
        return sorted(counts.items())

    @property
    def changed(self) -> list[DebitPreview]:
        return [d for d in self.debits if d.amount != d.item.amount]

    def facts(self) -> dict:
        """What the person confirms: exactly these debits, amounts and dates; exactly these dropping out."""
        return {"batch": self.batch.id, "today": self.today.isoformat(),
                "debits": [[d.item.id, str(round_money(d.amount, "EUR")), d.collection_date.isoformat()]
                           for d in self.debits],
                "dropped": [d.item.id for d in self.dropped]}


def close_preview(batch: SepaBatch, today: date, lead_days: int | None = None) -> ClosePreview:
    """What close_batch would send now, by the same rules, writing nothing (the page's confirm step)."""
    entity = db.session.get(LegalEntity, batch.legal_entity_id)
    preview = ClosePreview(batch, today, _lead_days(entity, lead_days))
    if batch.status != "open":
        preview.problem = f"batch #{batch.id} is already closed"
        return preview
    try:
        _creditor_missing(entity)
    except BatchError as error:
        preview.problem = str(error)
    pending, invoices, customers = _pending_with_parties(batch, lock=False)
    for item in pending:
        invoice = invoices[item.invoice_id]
        customer = customers[invoice.customer_id]
        reason = _not_to_debit(invoice, customer)
        if reason is not None:
            preview.dropped.append(DebitPreview(item, invoice, customer, item.amount, None, reason))
        else:
            preview.debits.append(DebitPreview(item, invoice, customer, invoice.amount_due,
                                               target2.collection_date(invoice.due_date, today, preview.lead_days)))
    if not preview.debits and preview.problem is None:
        dropped = [d.item.end_to_end_id for d in preview.dropped]
        preview.problem = (f"batch #{batch.id} has no debits to send"
                           + (f" ({len(dropped)} would be withdrawn: {', '.join(dropped)})" if dropped else ""))
    return preview


@transactional
def close_batch(batch: SepaBatch, actor: Actor, today: date, lead_days: int | None = None, *,
                confirmation: dict | None = None) -> SepaBatch:
    """Produce the pain.008.001.08 file of an open batch (validated against its schema) and close it.

    Each debit is re-read under a lock on its invoice: what is no longer due drops out with a note, the rest is
    debited exactly its amount due now, on the later of the invoice's pre-notified date (its due date: "debited on
    or after") and today + lead days (default: the entity's, see collection.lead_days), moved to the next TARGET2
    business day. `confirmation`: what the preview the person confirmed said (kept in the audit entry)."""
    batch = db.session.scalar(select(SepaBatch).where(SepaBatch.id == batch.id).with_for_update()) or batch
    if batch.status != "open":
        raise BatchError(f"batch #{batch.id} is already closed")
    entity = db.session.get(LegalEntity, batch.legal_entity_id)
    lead_days = _lead_days(entity, lead_days)
    _creditor_missing(entity)
    pending, invoices, customers = _pending_with_parties(batch, lock=True)
    for item in pending:
        invoice = invoices[item.invoice_id]
        _reread(batch, item, invoice, customers[invoice.customer_id])
    items = [i for i in pending if i.status == "pending"]
    withdrawn = [i.end_to_end_id for i in pending if i.status == "withdrawn"]
    if not items:
        db.session.flush()
        raise BatchError(f"batch #{batch.id} has no debits to send"
                         + (f" ({len(withdrawn)} withdrawn: {', '.join(withdrawn)})" if withdrawn else ""))
    message_id = message_id_for(entity, batch, today)
    document = SepaDD({"name": entity.name, "IBAN": entity.iban, "BIC": entity.bic, "batch": True,
                       "creditor_id": entity.sepa_creditor_id, "currency": "EUR"}, schema=SCHEMA)
    document.msg_id = message_id
    document._xml.find("CstmrDrctDbtInitn/GrpHdr/MsgId").text = message_id  # sepaxml set a random one
    collected = collected_mandates({c.mandate_reference for c in customers.values() if c.mandate_reference})
    total = Decimal(0)
    for item in items:
        invoice = invoices[item.invoice_id]
        customer = customers[invoice.customer_id]
        item.collection_date = target2.collection_date(invoice.due_date, today, lead_days)
        item.mandate_reference, item.debtor_iban = customer.mandate_reference, customer.iban
        item.sequence_type = sequence_type(customer.mandate_reference, customer.iban, collected)
        cents = int((item.amount * 100).to_integral_exact())
        total += item.amount
        document.add_payment({  # sepaxml makes one PmtInf block per sequence type and collection date
            "name": customer.name, "IBAN": customer.iban, "amount": cents, "type": item.sequence_type,
            "collection_date": item.collection_date, "mandate_id": customer.mandate_reference,
            "mandate_date": customer.mandate_date, "description": f"Invoice {invoice.number}",
            "endtoend_id": item.end_to_end_id,
        })
    xml = _validated(document.export(validate=False), batch)
    batch.xml, batch.message_id = xml, _message_id_in(xml)
    batch.collection_date = min(i.collection_date for i in items)
    batch.control_sum, batch.item_count = total, len(items)
    batch.status, batch.closed_at = "closed", utcnow()
    record("sepa_batch.closed", "sepa_batch", batch.id, actor, legal_entity_id=entity.id, items=len(items),
           control_sum=str(total), collection_date=batch.collection_date.isoformat(), message_id=batch.message_id,
           withdrawn=withdrawn, **({"confirmed": confirmation} if confirmation is not None else {}))
    return batch


def _message_id_in(xml: bytes) -> str:
    tree = etree.fromstring(xml)
    return tree.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", namespaces={"p": tree.nsmap[None]})


def item_by_end_to_end_id(end_to_end_id: str) -> SepaBatchItem | None:
    return db.session.scalar(select(SepaBatchItem).where(SepaBatchItem.end_to_end_id == end_to_end_id))


def follow_credit(invoice: Invoice, credit_note_number: str) -> list[str]:
    """A credit note changed the invoice's amount due: its debits not yet presented (pending in the open
    batch) drop out when nothing is due any more, or shrink to what is due. Debits already presented (a
    closed batch) are the bank's now and stay. Returns what was done, in words (for the audit)."""
    done = []
    items = db.session.scalars(
        select(SepaBatchItem).join(SepaBatch, SepaBatch.id == SepaBatchItem.batch_id)
        .where(SepaBatchItem.invoice_id == invoice.id, SepaBatchItem.status == "pending", SepaBatch.status == "open"))
    for item in items:
        if invoice.amount_due <= 0:
            item.status, item.resolved_at = "withdrawn", utcnow()
            item.note = f"withdrawn before it was sent: invoice {invoice.number} credited by {credit_note_number}"
            done.append(f"debit {item.end_to_end_id} withdrawn from batch #{item.batch_id}")
        elif item.amount > invoice.amount_due:
            item.note = (f"{item.amount} reduced to {invoice.amount_due}: invoice {invoice.number} credited by "
                         f"{credit_note_number}")
            done.append(f"debit {item.end_to_end_id} reduced from {item.amount} to {invoice.amount_due}")
            item.amount = invoice.amount_due
    db.session.flush()
    return done
