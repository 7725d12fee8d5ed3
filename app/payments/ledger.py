"""Payments against invoices: the amount due drops, a fully paid invoice becomes `paid`; a payment is
corrected by a reversal, a counter-entry of minus its amount (never changed or deleted)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import bindparam, select, update

from app.transactions import transactional
from app.audit import Actor, audit_row, record, record_many
from app.bulk import copy_rows, new_ids
from app.billing.money import round_money
from app.chain.sealing import pending
from app.errors import PaymentError
from app.extensions import db
from app.formatting import format_money
from app.models import Collection, CustomerCredit, Invoice, LegalEntity, Payment, SepaBatch, SepaBatchItem
from app.models.types import utcnow
from app.outbox import emit, emit_many, event_row
from app.records import validation as v


def lock_invoice(invoice_id: int) -> Invoice:
    invoice = lock_invoices([invoice_id]).get(invoice_id)
    if invoice is None:
        raise PaymentError(f"no invoice #{invoice_id}")
    return invoice


def lock_invoices(invoice_ids) -> dict[int, Invoice]:
    """The invoices, locked until the end of the transaction (PostgreSQL) and read afresh; missing ones left out."""
    found: dict[int, Invoice] = {}
    ids = sorted(set(invoice_ids))  # one lock order for every caller: no deadlock between two of them
    for start in range(0, len(ids), 1000):
        query = select(Invoice).where(Invoice.id.in_(ids[start:start + 1000])).order_by(Invoice.id)
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        for invoice in db.session.scalars(query.execution_options(populate_existing=True)):
            found[invoice.id] = invoice
    return found


def _money(amount: Decimal, invoice: Invoice) -> Decimal:
    return round_money(Decimal(amount), invoice.currency)


@dataclass(frozen=True)
class PaymentRequest:
    """Money received for one invoice, as `record_payments` takes it."""

    invoice_id: int
    amount: Decimal
    received_on: date
    reference: str
    source: str = "manual"
    sepa_batch_item_id: int | None = None
    bank_entry_id: int | None = None


def payment_problem(invoice, request: PaymentRequest, today: date, zone: str = "") -> PaymentError | None:
    """Why `invoice` (an Invoice, or a row with its number, status, currency and amount_due) cannot take this
    payment now (with the field at fault), or None."""
    if invoice is None:
        return PaymentError(f"no invoice #{request.invoice_id}")
    amount = request.amount
    if invoice.status not in ("issued",):
        return PaymentError(f"invoice {invoice.number or '(draft)'} is {invoice.status}: only issued invoices take "
                            "payments")
    if amount <= 0:
        return PaymentError("the amount must be greater than zero")
    if amount != round_money(amount, invoice.currency):
        return PaymentError(f"{amount} has more decimals than {invoice.currency} allows")
    if amount > invoice.amount_due:
        return PaymentError(f"{amount} is more than the {round_money(Decimal(invoice.amount_due), invoice.currency)} "
                            f"{invoice.currency} still due on {invoice.number}")
    if request.received_on > today:
        return PaymentError(f"{request.received_on.isoformat()} is in the future (today is {today.isoformat()} in "
                            f"{zone or 'the legal entity time zone'}): record a payment once it has been received",
                            "received_on")
    return None


def record_payment(invoice_id: int, amount: Decimal, received_on: date, reference: str, actor: Actor, *,
                   source: str = "manual", sepa_batch_item_id: int | None = None,
                   bank_entry_id: int | None = None) -> Payment:
    """Record money received for an invoice (partial payments included), in the caller's transaction.

    Refuses a date after today in the legal entity's time zone. Emits `payment.received` (invoice_id,
    payment_id, amount, currency, source, amount_due, status)."""
    payment_id, = record_payments([PaymentRequest(invoice_id, amount, received_on, reference, source,
                                                  sepa_batch_item_id, bank_entry_id)], actor)
    return db.session.get(Payment, payment_id)


@dataclass
class _Due:
    """An invoice as payments change it: read under lock, written back once."""

    id: int
    legal_entity_id: int
    billing_run_id: int | None
    number: str | None
    currency: str
    status: str
    amount_due: Decimal


def locked_dues(invoice_ids) -> dict[int, _Due]:
    """What is due on these invoices, locked until the end of the transaction (PostgreSQL)."""
    ids = sorted(set(invoice_ids))  # one lock order for every caller: no deadlock between two
    columns = (Invoice.id, Invoice.legal_entity_id, Invoice.billing_run_id, Invoice.number, Invoice.currency,
               Invoice.status, Invoice.amount_due)
    queries = [select(*columns).where(Invoice.id.in_(ids[start:start + 1000])).order_by(Invoice.id)
               for start in range(0, len(ids), 1000)]
    if db.session.get_bind().dialect.name == "postgresql":
        queries = [query.with_for_update() for query in queries]
    found: dict[int, _Due] = {}
    for query in queries:
        for row in db.session.execute(query):
            found[row.id] = _Due(*row[:6], Decimal(row.amount_due))
    return found


PAYMENT_COLUMNS = ("id", "invoice_id", "amount", "received_on", "reference", "source", "sepa_batch_item_id",
                   "bank_entry_id", "recorded_by", "created_at")


def record_payments(requests: list[PaymentRequest], actor: Actor, locked: dict[int, _Due] | None = None) -> list[int]:
    """Record payments (one, or a whole bank statement's) in the caller's transaction; returns their ids in order.

    The invoices are locked and read in one go, every request checked (in order: two payments of one invoice add
    up; `locked`: their locked_dues() when the caller took them already), then everything is written at once: payments, amounts due and statuses, collections of the invoices now
    paid, the audit trail and `payment.received` events. All or nothing: PaymentError names the first request
    refused, and nothing was written."""
    if not requests:
        return []
    for request in requests:
        if not isinstance(request.amount, Decimal):
            raise TypeError("amount must be a Decimal")
    invoices = locked if locked is not None else locked_dues(r.invoice_id for r in requests)
    entities = {entity_id: db.session.get(LegalEntity, entity_id)
                for entity_id in {i.legal_entity_id for i in invoices.values()}}
    todays = {entity_id: entity.today() for entity_id, entity in entities.items()}
    paid_before = {i.id for i in invoices.values() if i.status == "paid"}
    after: list[tuple[_Due, str, str]] = []
    for request in requests:
        invoice = invoices.get(request.invoice_id)
        problem = payment_problem(invoice, request, todays[invoice.legal_entity_id] if invoice else date.max,
                                  entities[invoice.legal_entity_id].timezone if invoice else "")
        if problem:
            raise problem
        invoice.amount_due -= request.amount
        if invoice.amount_due == 0:
            invoice.status = "paid"
        after.append((invoice, str(round_money(invoice.amount_due, invoice.currency)), invoice.status))
    # Written first: on SQLite this takes the database's write lock, under which new_ids may pick ids.
    db.session.execute(
        update(Invoice.__table__).where(Invoice.__table__.c.id == bindparam("invoice_id"))
        .values(amount_due=bindparam("due"), status=bindparam("new_status")),
        [{"invoice_id": i.id, "due": i.amount_due, "new_status": i.status} for i in invoices.values()])
    payment_ids = new_ids(Payment.__table__, len(requests))
    now = utcnow()
    copy_rows(Payment.__table__, PAYMENT_COLUMNS, [
        (pid, r.invoice_id, r.amount, r.received_on, r.reference.strip(), r.source, r.sepa_batch_item_id,
         r.bank_entry_id, actor.label, now) for pid, r in zip(payment_ids, requests)])
    pending("payment", payment_ids)
    paid = [i.id for i in invoices.values() if i.status == "paid" and i.id not in paid_before]
    for start in range(0, len(paid), 1000):
        db.session.execute(update(Collection.__table__)
                           .where(Collection.__table__.c.invoice_id.in_(paid[start:start + 1000]))
                           .values(status="collected", next_retry_on=None))
    audit, events = [], []
    for pid, request, (invoice, amount_due, status) in zip(payment_ids, requests, after):
        amount = str(round_money(request.amount, invoice.currency))
        audit.append(audit_row(
            "payment.recorded", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
            billing_run_id=invoice.billing_run_id, number=invoice.number, amount=amount, currency=invoice.currency,
            received_on=request.received_on.isoformat(), reference=request.reference.strip(), source=request.source,
            payment_id=pid, amount_due=amount_due, status=status))
        events.append(event_row("payment.received", {
            "invoice_id": invoice.id, "payment_id": pid, "amount": amount, "currency": invoice.currency,
            "source": request.source, "amount_due": amount_due, "status": status},
            legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id))
    record_many(audit)
    emit_many(events)
    _forget(Invoice, invoices)
    _forget(Collection, None, paid)
    return payment_ids


def _forget(model, by_id: dict | None, invoice_ids: list[int] | None = None) -> None:
    """Expire what the session holds of rows written above with SQL, so it reads them afresh."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model) and ((by_id is not None and obj.id in by_id)
                                       or (invoice_ids is not None and obj.invoice_id in invoice_ids)):
            db.session.expire(obj)


@transactional
def record_typed_payment(invoice_id: int, amount: str, received_on: str, reference: str, actor: Actor,
                         locale: str | None = None) -> Payment:
    """A payment a person typed (the invoice page, `flask payments record`), as text — in `locale` when given
    (the invoice page: "30,00" and 31.03.2026 for de_DE), else 30.00 and 2026-03-31; raises ValidationError
    keyed by amount, received_on and reference, and then nothing was recorded."""
    fields = v.Fields({"amount": amount, "received_on": received_on, "reference": reference})
    fields.take("amount", lambda s: v.parse_price(s, locale))
    fields.take("received_on", lambda s: v.parse_date(s, locale))
    fields.take("reference", v.parse_payment_reference)
    clean = fields.result()
    try:
        return record_payment(invoice_id, clean["amount"], clean["received_on"], clean["reference"], actor)
    except PaymentError as error:
        raise v.ValidationError({error.field: str(error)}) from None


def reversal_of(payment_id: int) -> Payment | None:
    """The counter-entry that reversed this payment, if any."""
    return db.session.scalar(select(Payment).where(Payment.reverses_payment_id == payment_id))


@transactional
def reverse_payment(payment_id: int, reason: str, actor: Actor) -> Payment:
    """Take back a payment by a counter-entry of minus its amount, in the caller's transaction; returns it.

    The original payment is kept as it is; the reversal names it and says why. The invoice is due again by
    the amount (a paid invoice is issued again); a payment settled from a customer credit gives that credit
    back (the next billing run applies it again). Refused, with PaymentError and nothing changed: a reversal
    itself, a payment reversed already, a blank reason, an invoice that is void or credited so that the
    amount due would exceed what is still owed on it (total minus its credit notes).

    Collection: an invoice that was `collected` is due again. If a debit for it is still pending in the open
    SEPA batch, that debit goes ahead (closing re-reads the amount due), so the collection is `in_batch`.
    Otherwise the collection goes back to `waiting`, and nothing is debited automatically: a collected
    debit is usually reversed because the debtor claimed a refund from the bank, and debiting it again
    needs a person's decision (and a new pre-notification); for a manual payment the customer is waiting
    for a reminder, not a surprise debit. The collection's `last_error` says why it is waiting.
    """
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        raise PaymentError(f"no payment #{payment_id}")
    try:
        reason = v.parse_multiline_text(v.required(reason, "a reason"), "the reason", v.ONE_LINE_TEXT_MAX)
    except v.FieldError as error:
        raise PaymentError(f"{error}: say why the payment is reversed (e.g. typed on the wrong invoice)") from None
    if payment.reverses_payment_id is not None:
        raise PaymentError(f"payment #{payment.id} is itself the reversal of payment #{payment.reverses_payment_id}:"
                           " if that payment was received after all, record it again")
    if payment.source == "customer_credit":
        from app.billing.ledger import lock_entity

        invoice_row = db.session.get(Invoice, payment.invoice_id)
        lock_entity(invoice_row.legal_entity_id)  # the billing run applies customer credits under this lock
    invoice = lock_invoice(payment.invoice_id)
    db.session.refresh(invoice)
    earlier = reversal_of(payment.id)
    if earlier is not None:
        raise PaymentError(f"payment #{payment.id} was reversed already (payment #{earlier.id}, "
                           f"{earlier.received_on.isoformat()}: {earlier.reason})")
    amount = _money(payment.amount, invoice)
    _check_can_take_back(invoice, amount)

    today = invoice.legal_entity.today()
    reversal = Payment(invoice_id=invoice.id, amount=-amount, received_on=today, reference=payment.reference,
                       source=payment.source, customer_credit_id=payment.customer_credit_id,
                       bank_entry_id=payment.bank_entry_id, reverses_payment_id=payment.id, reason=reason, recorded_by=actor.label)
    db.session.add(reversal)
    invoice.amount_due = _money(invoice.amount_due, invoice) + amount
    status_before = invoice.status
    invoice.status = "issued"
    if payment.customer_credit_id is not None:
        credit = db.session.get(CustomerCredit, payment.customer_credit_id)
        credit.applied_amount = Decimal(credit.applied_amount) - amount
    if payment.source == "bank_transfer":  # (a collected debit's credit stays: its return is another entry)
        from app.payments.bank_queue import release

        release(payment.bank_entry_id, amount, actor)  # the transfer's money waits in the unmatched queue again
    collection_note = _collection_due_again(invoice, payment, reason)
    db.session.flush()
    amount_due = str(_money(invoice.amount_due, invoice))
    record("payment.reversed", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, amount=str(amount), currency=invoice.currency, reason=reason,
           payment_id=payment.id, reversal_id=reversal.id, source=payment.source,
           received_on=payment.received_on.isoformat(), reference=payment.reference, amount_due=amount_due,
           status_before=status_before, status=invoice.status, collection=collection_note)
    emit("payment.reversed", {"invoice_id": invoice.id, "payment_id": payment.id, "reversal_id": reversal.id,
                              "amount": str(amount), "currency": invoice.currency, "source": payment.source,
                              "amount_due": amount_due, "status": invoice.status},
         legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id)
    return reversal


def _check_can_take_back(invoice: Invoice, amount: Decimal) -> None:
    """The amount due after the reversal stays within 0..what is still owed (total minus credit notes)."""
    from app.records.credit_notes import credit_notes_of, credited_total

    if invoice.status == "credited":
        raise PaymentError(
            f"invoice {invoice.number} is fully credited: nothing can be due on it again. A credit note on a paid "
            "invoice left its customer a credit that includes this payment: if the money never arrived, settle that "
            "credit with the customer (do not refund it) instead of reversing the payment")
    if invoice.status not in ("issued", "paid"):
        raise PaymentError(f"invoice {invoice.number or '(draft)'} is {invoice.status}: nothing can be due on it "
                           "again, so its payments cannot be reversed")
    notes = credit_notes_of(invoice)
    owed = _money(invoice.total_amount, invoice) - credited_total(invoice, notes)
    due_after = _money(invoice.amount_due, invoice) + amount
    if due_after > owed:
        locale, currency = invoice.legal_entity.locale, invoice.currency
        raise PaymentError(
            f"invoice {invoice.number} was credited by {', '.join(n.number for n in notes)} after it was paid: "
            f"only {format_money(owed, currency, locale)} is still owed on it, and reversing "
            f"{format_money(amount, currency, locale)} would make {format_money(due_after, currency, locale)} due. "
            "The credit note left the customer a credit out of this "
            "payment: if the money never arrived, settle that credit with the customer (do not refund it) "
            "instead of reversing the payment")


def _collection_due_again(invoice: Invoice, payment: Payment, reason: str) -> str | None:
    """See reverse_payment: a collected invoice's collection is waiting again (or in the open batch)."""
    collection = db.session.scalar(select(Collection).where(Collection.invoice_id == invoice.id))
    if collection is None or collection.status != "collected":
        return None
    pending = db.session.scalar(
        select(SepaBatchItem.id).join(SepaBatch, SepaBatch.id == SepaBatchItem.batch_id)
        .where(SepaBatchItem.invoice_id == invoice.id, SepaBatchItem.status == "pending", SepaBatch.status == "open"))
    if pending is not None:
        collection.status = "in_batch"
        return "the debit pending in the open batch goes ahead for the amount due at closing"
    collection.status, collection.next_retry_on = "waiting", None
    collection.last_error = f"payment #{payment.id} reversed ({reason}): due again, not debited automatically"
    return "waiting: due again, not debited automatically"


# ------------------------------------------------------------------ reading payments
@dataclass
class PaymentLine:
    """A payment as lists show it: its invoice's number and the reversal that took it back, if any."""

    payment: Payment
    invoice_number: str
    currency: str
    reversed_by: Payment | None = None


def list_payments(entity_id: int, invoice_id: int | None = None) -> list[PaymentLine]:
    """The entity's payments (or one invoice's), oldest first, each with the reversal that took it back
    (listed right after it)."""
    conditions = [Invoice.legal_entity_id == entity_id]
    if invoice_id is not None:
        conditions.append(Payment.invoice_id == invoice_id)
    rows = db.session.execute(select(Payment, Invoice.number, Invoice.currency)
                              .join(Invoice, Invoice.id == Payment.invoice_id)
                              .where(*conditions).order_by(Payment.id)).all()
    # A reversal is on the same invoice as the payment it reverses, so always among these rows.
    reversals = {p.reverses_payment_id: PaymentLine(p, number, currency)
                 for p, number, currency in rows if p.reverses_payment_id is not None}
    lines: list[PaymentLine] = []
    for p, number, currency in rows:
        if p.reverses_payment_id is not None:
            continue  # listed under the payment it reverses
        reversal = reversals.get(p.id)
        lines.append(PaymentLine(p, number, currency, reversal.payment if reversal else None))
        if reversal is not None:
            lines.append(reversal)
    return lines
