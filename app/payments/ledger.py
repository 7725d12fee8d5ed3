"""Payments against invoices: the amount due drops, a fully paid invoice becomes `paid`."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app.audit import Actor, record
from app.billing.money import round_money
from app.extensions import db
from app.models import Collection, Invoice, Payment


class PaymentError(ValueError):
    """A payment that cannot be recorded; the message says why."""


def lock_invoice(invoice_id: int) -> Invoice:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    invoice = db.session.scalar(query)
    if invoice is None:
        raise PaymentError(f"no invoice #{invoice_id}")
    return invoice


def record_payment(invoice_id: int, amount: Decimal, received_on: date, reference: str, actor: Actor, *,
                   source: str = "manual", sepa_batch_item_id: int | None = None,
                   bank_entry_id: int | None = None) -> Payment:
    """Record money received for an invoice (partial payments included), in the caller's transaction."""
    if not isinstance(amount, Decimal):
        raise TypeError("amount must be a Decimal")
    invoice = lock_invoice(invoice_id)
    if invoice.status not in ("issued",):
        raise PaymentError(f"invoice {invoice.number or '(draft)'} is {invoice.status}: only issued invoices take payments")
    if amount <= 0:
        raise PaymentError("the amount must be greater than zero")
    if amount != round_money(amount, invoice.currency):
        raise PaymentError(f"{amount} has more decimals than {invoice.currency} allows")
    if amount > invoice.amount_due:
        raise PaymentError(f"{amount} is more than the {round_money(invoice.amount_due, invoice.currency)} "
                           f"{invoice.currency} still due on {invoice.number}")
    payment = Payment(invoice_id=invoice.id, amount=amount, received_on=received_on, reference=reference.strip(),
                      source=source, sepa_batch_item_id=sepa_batch_item_id, bank_entry_id=bank_entry_id, recorded_by=actor.label)
    db.session.add(payment)
    invoice.amount_due = invoice.amount_due - amount
    if invoice.amount_due == 0:
        invoice.status = "paid"
        collection = db.session.scalar(select(Collection).where(Collection.invoice_id == invoice.id))
        if collection is not None:
            collection.status, collection.next_retry_on = "collected", None
    db.session.flush()
    record("payment.recorded", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, amount=str(amount), currency=invoice.currency,
           received_on=received_on.isoformat(), reference=payment.reference, source=source,
           amount_due=str(round_money(invoice.amount_due, invoice.currency)), status=invoice.status)
    return payment
