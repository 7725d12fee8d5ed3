"""Collecting each issued invoice: start, record the bank's outcome, retry on the configured days, flag."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from app.agents.settings import agent_settings
from app.audit import Actor, record
from app.extensions import db
from app.models import Collection, Customer, Invoice, LegalEntity, Payment, SepaBatchItem
from app.models.types import utcnow
from app.outbox import emit
from app.payments.connectors import CONNECTORS
from app.payments.ledger import record_payment

log = logging.getLogger(__name__)
AGENT = Actor.system("Payment Collection Agent")


def settings() -> dict:
    return agent_settings("payment_collection")


def lead_days(entity: LegalEntity) -> int:
    """Days between closing the entity's SEPA batch and the earliest collection date asked of the bank: the
    entity's own (Settings > Legal entities), else the Payment Collection Agent's setting."""
    from app.records.precedence import collection_lead_days

    return collection_lead_days(entity, int(settings()["collection_lead_days"])).value


def retry_days() -> list[int]:
    return [int(d) for d in str(settings()["retry_days"]).split(",") if d.strip()]


@dataclass
class CollectionResult:
    status: str
    message: str


def needs_attention():
    """SQL: a collection a person must decide on — failed or flagged, or a SEPA debit that waits (only a
    reversed payment on its invoice leaves one waiting)."""
    return or_(Collection.status.in_(("failed", "flagged")),
               and_(Collection.status == "waiting", Collection.method == "sepa_debit"))


def collection_for(invoice: Invoice, method: str) -> tuple[Collection, bool]:
    """The invoice's collection record and whether this call created it (once, even when workers race)."""
    collection = db.session.scalar(select(Collection).where(Collection.invoice_id == invoice.id))
    if collection is not None:
        return collection, False
    savepoint = db.session.begin_nested()
    try:
        collection = Collection(invoice_id=invoice.id, method=method, status="waiting")
        db.session.add(collection)
        db.session.flush()
        savepoint.commit()
        return collection, True
    except IntegrityError:
        savepoint.rollback()
        return db.session.scalar(select(Collection).where(Collection.invoice_id == invoice.id)), False


def start_collection(invoice_id: int) -> CollectionResult:
    """On `invoice.issued`: read the customer's payment method and act on it. Seen twice, acts once."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status != "issued":
        return CollectionResult("skipped", f"invoice #{invoice_id} is not open")
    customer = db.session.get(Customer, invoice.customer_id)
    collection, created = collection_for(invoice, customer.payment_method)
    if not created:
        db.session.commit()
        return CollectionResult(collection.status, "already started")
    step = CONNECTORS[customer.payment_method].collect(invoice, customer, collection)
    collection.status = step.status
    if step.status == "failed":
        collection.last_error = step.message
    record(f"collection.{step.status}", "invoice", invoice.id, AGENT, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, number=invoice.number, method=customer.payment_method,
           message=step.message)
    db.session.commit()
    return CollectionResult(step.status, step.message)


def record_outcome(item: SepaBatchItem, outcome: str, on_date: date, actor: Actor, reason: str = "",
                   bank_entry_id: int | None = None) -> None:
    """The bank's answer for one debit: `collected` records a payment; `returned` schedules a retry or flags."""
    if item.status != "pending":
        raise ValueError(f"debit {item.end_to_end_id} is already {item.status}")
    if item.batch.status != "closed":
        raise ValueError(f"debit {item.end_to_end_id} has not been sent yet: close its batch first")
    invoice = db.session.get(Invoice, item.invoice_id)
    collection = db.session.get(Collection, item.collection_id)
    item.resolved_at = utcnow()
    if outcome == "collected":
        item.status = "collected"
        record_payment(invoice.id, item.amount, on_date, f"SEPA {item.end_to_end_id}", actor,
                       source="sepa_debit", sepa_batch_item_id=item.id, bank_entry_id=bank_entry_id)
        return
    if outcome != "returned":
        raise ValueError(f"unknown outcome {outcome!r}: use collected or returned")
    if not reason.strip():
        raise ValueError(f"debit {item.end_to_end_id}: say why it was returned (e.g. MD06, AC04, insufficient funds)")
    item.status, item.return_reason = "returned", reason.strip()
    collection_failed(collection, invoice, reason.strip(), on_date, actor)


def debit_returned(item: SepaBatchItem, on_date: date, reason: str, actor: Actor) -> None:
    """The bank returned a debit (a statement's return entry, an R-transaction): before or after it was booked as
    collected. A collected one is reversed by a counter-entry (the invoice is due again); either way the
    Payment Collection Agent retries it on its configured days, or flags it."""
    if item.status == "pending":
        record_outcome(item, "returned", on_date, actor, reason)
        return
    if item.status != "collected":
        raise ValueError(f"debit {item.end_to_end_id} is {item.status}: it cannot be returned")
    from app.payments.ledger import reverse_payment

    payment = db.session.scalar(select(Payment).where(Payment.sepa_batch_item_id == item.id))
    reverse_payment(payment.id, f"SEPA debit {item.end_to_end_id} returned: {reason}", actor)
    item.status, item.return_reason, item.resolved_at = "returned", reason, utcnow()
    invoice = db.session.get(Invoice, item.invoice_id)
    collection = db.session.get(Collection, item.collection_id)
    collection_failed(collection, invoice, reason, on_date, actor)


def collection_failed(collection: Collection, invoice: Invoice, reason: str, on_date: date, actor: Actor) -> None:
    """Schedule the next retry (day 3, 7, 14 after the first failure by default), or flag the invoice."""
    collection.attempts += 1
    collection.last_error = reason
    if collection.first_failure_on is None:
        collection.first_failure_on = on_date
    days = retry_days()
    if collection.attempts <= len(days):
        retry_on = collection.first_failure_on + timedelta(days=days[collection.attempts - 1])
        collection.status, collection.next_retry_on = "retry_scheduled", retry_on
        emit("payment.retry_scheduled", {"invoice_id": invoice.id, "number": invoice.number,
                                         "retry_on": retry_on.isoformat(), "attempt": collection.attempts + 1,
                                         "reason": reason},
             legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id)
        record("collection.retry_scheduled", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
               billing_run_id=invoice.billing_run_id, number=invoice.number, reason=reason,
               retry_on=retry_on.isoformat(), attempt=collection.attempts + 1)
        return
    collection.status, collection.next_retry_on = "flagged", None
    record("collection.flagged", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, number=invoice.number, reason=reason, attempts=collection.attempts,
           message=f"collection failed {collection.attempts} times; a person must follow up")
    _notify_finance(invoice, collection)


def present_due_retries(today: date) -> int:
    """Put collections whose retry day has come into their entity's open batch; returns how many."""
    from app.payments.sepa import add_to_open_batch

    due = list(db.session.scalars(select(Collection).where(Collection.status == "retry_scheduled",
                                                           Collection.next_retry_on <= today)))
    for collection in due:
        invoice = db.session.get(Invoice, collection.invoice_id)
        if invoice.status != "issued":
            collection.status, collection.next_retry_on = "collected" if invoice.status == "paid" else "failed", None
            continue
        item = add_to_open_batch(invoice, collection)
        collection.status, collection.next_retry_on = "in_batch", None
        record("collection.retried", "invoice", invoice.id, AGENT, legal_entity_id=invoice.legal_entity_id,
               billing_run_id=invoice.billing_run_id, number=invoice.number, attempt=item.attempt,
               batch_id=item.batch_id)
    db.session.commit()
    return len(due)


def on_retry_scheduled(invoice_id: int, today: date) -> CollectionResult:
    """On `payment.retry_scheduled`: present the retry now if its day has come (else the daily job will)."""
    collection = db.session.scalar(select(Collection).where(Collection.invoice_id == invoice_id))
    if collection is None or collection.status != "retry_scheduled":
        return CollectionResult("skipped", "no retry pending")
    if collection.next_retry_on and collection.next_retry_on <= today:
        present_due_retries(today)
        return CollectionResult("in_batch", "retry presented")
    return CollectionResult("retry_scheduled", f"retry on {collection.next_retry_on}")


def _notify_finance(invoice: Invoice, collection: Collection) -> None:
    """Tell the entity's finance team (best effort: the flag and the audit entry are what count)."""
    from app.delivery.mail import send_notification

    entity = invoice.legal_entity
    if not entity.finance_email:
        return
    try:
        send_notification(
            entity.finance_email,
            f"Collection failed: invoice {invoice.number} needs a person",
            f"Collecting invoice {invoice.number} ({invoice.customer.name}, {invoice.amount_due} {invoice.currency}) "
            f"failed {collection.attempts} times; last reason: {collection.last_error}.\n"
            "Arbill stopped retrying. Please contact the customer and record the payment by hand.",
        )
    except Exception as error:  # noqa: BLE001
        log.warning("could not notify %s: %s", entity.finance_email, error)
