"""SEPA direct-debit batches: open per legal entity, closed into a validated pain.008 file."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sepaxml import SepaDD
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit import Actor, record
from app.extensions import db
from app.models import Collection, Customer, Invoice, LegalEntity, SepaBatch, SepaBatchItem
from app.models.types import utcnow


class BatchError(ValueError):
    """A batch cannot be closed or changed; the message says why and what to do."""


def open_batch(entity_id: int) -> SepaBatch:
    """The entity's open batch, created when there is none (one open batch per entity, by index)."""
    for _ in range(3):
        batch = db.session.scalar(select(SepaBatch).where(SepaBatch.legal_entity_id == entity_id,
                                                          SepaBatch.status == "open"))
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


def close_batch(batch: SepaBatch, actor: Actor, today: date, lead_days: int = 2) -> SepaBatch:
    """Produce the pain.008 file of an open batch (validated against its schema) and close it."""
    if batch.status != "open":
        raise BatchError(f"batch #{batch.id} is already closed")
    entity = db.session.get(LegalEntity, batch.legal_entity_id)
    missing = [label for label, value in (("SEPA creditor id", entity.sepa_creditor_id), ("IBAN", entity.iban),
                                          ("BIC", entity.bic)) if not value]
    if missing:
        raise BatchError(f"{entity.code} has no {', '.join(missing)}: add them under Settings > Legal entities")
    items = [i for i in batch.items if i.status == "pending"]
    if not items:
        raise BatchError(f"batch #{batch.id} has no debits to send")
    collection_date = today + timedelta(days=lead_days)
    message_id = f"ARB{entity.code}{batch.id:06d}{today:%Y%m%d}"[:35]
    document = SepaDD({"name": entity.name, "IBAN": entity.iban, "BIC": entity.bic, "batch": True,
                       "creditor_id": entity.sepa_creditor_id, "currency": "EUR"}, schema="pain.008.001.02")
    total = Decimal(0)
    for item in items:
        invoice = db.session.get(Invoice, item.invoice_id)
        customer = db.session.get(Customer, invoice.customer_id)
        cents = int((item.amount * 100).to_integral_exact())
        total += item.amount
        document.add_payment({
            "name": customer.name, "IBAN": customer.iban, "amount": cents, "type": "RCUR",
            "collection_date": collection_date, "mandate_id": customer.mandate_reference,
            "mandate_date": customer.mandate_date, "description": f"Invoice {invoice.number}",
            "endtoend_id": item.end_to_end_id,
        })
    xml = document.export(validate=True)
    batch.xml, batch.message_id, batch.collection_date = xml, message_id, collection_date
    batch.control_sum, batch.item_count = total, len(items)
    batch.status, batch.closed_at = "closed", utcnow()
    record("sepa_batch.closed", "sepa_batch", batch.id, actor, legal_entity_id=entity.id, items=len(items),
           control_sum=str(total), collection_date=collection_date.isoformat())
    return batch


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
