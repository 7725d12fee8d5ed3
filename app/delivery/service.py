"""The Invoice Delivery Agent's work: render the e-invoice and e-mail it, once per invoice.

The automatic delivery of an invoice is one row (unique per invoice); once it is `sent`, a retried
or duplicated job sends nothing. SMTP failures raise so that RQ retries with backoff; the last
failure leaves the delivery `failed` with the error, visible on the invoice and in the run's audit.
A customer without an e-mail address is reported, not retried. A person can press Resend.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.numbers import format_currency
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit import Actor, record
from app.delivery.mail import MailError, build_message, send
from app.extensions import db
from app.models import AgentDefinition, Customer, Invoice, InvoiceDelivery
from app.models.types import utcnow

log = logging.getLogger(__name__)
AGENT = Actor.system("Invoice Delivery Agent")
# How long after its last retry was due a delivery may still be `sending`/`retrying` (a backlog on
# the delivery queue delays jobs) before it is taken as stopped.
STUCK_MARGIN = timedelta(hours=2)
STUCK_REASON = ("the delivery job stopped without an outcome (its worker was stopped or crashed, or the job "
                "queue lost it): check with the customer whether the e-mail arrived, then press Resend")


@dataclass
class DeliveryOutcome:
    status: str
    message: str


class DeliveryFailed(RuntimeError):
    """Sending failed; raised so that the job is retried."""


def settings() -> dict:
    from app.agents.registry import INVOICE_DELIVERY

    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == INVOICE_DELIVERY.key))
    return {**INVOICE_DELIVERY.defaults(), **((agent.configuration if agent else None) or {})}


def _auto_delivery(invoice: Invoice) -> InvoiceDelivery:
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice.id,
                                                               InvoiceDelivery.kind == "auto"))
    if delivery is not None:
        return delivery
    savepoint = db.session.begin_nested()
    try:
        delivery = InvoiceDelivery(invoice_id=invoice.id, kind="auto", status="sending", attempts=0)
        db.session.add(delivery)
        db.session.flush()
        savepoint.commit()
        return delivery
    except IntegrityError:  # the same event's other job created it
        savepoint.rollback()
        return db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice.id,
                                                               InvoiceDelivery.kind == "auto"))


def deliver_invoice(invoice_id: int, *, delivery_id: int | None = None, final_attempt: bool = True) -> DeliveryOutcome:
    """Send the invoice (the automatic delivery, or the resend `delivery_id`)."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status not in ("issued", "paid"):
        return DeliveryOutcome("skipped", f"invoice #{invoice_id} is not issued")
    delivery = db.session.get(InvoiceDelivery, delivery_id) if delivery_id else _auto_delivery(invoice)
    if delivery.status == "sent":
        db.session.commit()
        return DeliveryOutcome("sent", "already sent: nothing to do")
    customer = db.session.get(Customer, invoice.customer_id)
    audit = dict(legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id,
                 number=invoice.number, kind=delivery.kind)
    if not customer.email:
        delivery.status = "no_email"
        delivery.error = f"customer {customer.name} has no e-mail address: add one on the customer page, then Resend"
        record("invoice.delivery_failed", "invoice", invoice.id, AGENT, reason=delivery.error, **audit)
        db.session.commit()
        return DeliveryOutcome("no_email", delivery.error)

    delivery.attempts += 1
    delivery.recipient = customer.email
    delivery.message_id = f"<invoice-{invoice.id}-{delivery.kind}-{delivery.id}@arbill>"
    db.session.commit()

    from app.documents.service import get_or_render_document

    document = get_or_render_document(invoice)
    db.session.commit()
    subject, body = _texts(invoice, customer)
    message = build_message(customer.email, subject, body, message_id=delivery.message_id,
                            attachments=[(f"Invoice-{invoice.number}.pdf", "application/pdf", document.pdf)])
    try:
        send(message)
    except MailError as error:
        delivery.error = str(error)
        delivery.status = "failed" if final_attempt else "retrying"
        record("invoice.delivery_failed" if final_attempt else "invoice.delivery_retrying", "invoice", invoice.id,
               AGENT, reason=str(error), attempt=delivery.attempts, **audit)
        db.session.commit()
        # Ids only for RQ (Redis, /rq, the worker's log), without the chained error: the answer can quote the address.
        raise DeliveryFailed(f"delivery {delivery.id} of invoice {invoice.id} failed: "
                             "the invoice page has the SMTP server's answer") from None
    delivery.status, delivery.sent_at, delivery.error = "sent", utcnow(), None
    record("invoice.delivered", "invoice", invoice.id, AGENT, recipient=customer.email, attempt=delivery.attempts,
           **audit)
    db.session.commit()
    return DeliveryOutcome("sent", f"sent to {customer.email}")


def request_resend(invoice: Invoice, actor: Actor) -> InvoiceDelivery:
    """A person asks to send the invoice again (audited); the caller commits and enqueues the job."""
    if invoice.status not in ("issued", "paid"):
        raise ValueError(f"invoice {invoice.number or '(draft)'} is {invoice.status}: only posted invoices are sent")
    delivery = InvoiceDelivery(invoice_id=invoice.id, kind="resend", status="sending", requested_by=actor.label)
    db.session.add(delivery)
    db.session.flush()
    record("invoice.resend_requested", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, number=invoice.number)
    return delivery


def fail_stuck_deliveries(now: datetime | None = None) -> int:
    """Report deliveries that ended without an outcome as failed, so a person sees them and can Resend.

    A delivery still `sending` or `retrying` long after its last retry was due has lost its job (a
    worker killed mid-send, Redis lost). Nothing is sent again automatically: the e-mail may have
    left before the crash, and a customer must never get an invoice twice by our doing.
    """
    now = now or utcnow()
    retry_minutes = sum(int(m) for m in str(settings()["retry_minutes"]).split(",") if m.strip())
    cutoff = now - timedelta(minutes=retry_minutes) - STUCK_MARGIN
    stuck = list(db.session.scalars(select(InvoiceDelivery).where(
        InvoiceDelivery.status.in_(("sending", "retrying")), InvoiceDelivery.created_at < cutoff)))
    sweep = Actor.system("stuck-delivery sweep")
    for delivery in stuck:
        invoice = db.session.get(Invoice, delivery.invoice_id)
        delivery.status, delivery.error = "failed", STUCK_REASON
        record("invoice.delivery_failed", "invoice", invoice.id, sweep, reason=STUCK_REASON, kind=delivery.kind,
               legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id, number=invoice.number)
    db.session.commit()
    return len(stuck)


def latest_delivery(invoice_id: int) -> InvoiceDelivery | None:
    return db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice_id)
                             .order_by(InvoiceDelivery.id.desc()).limit(1))


def _texts(invoice: Invoice, customer: Customer) -> tuple[str, str]:
    entity = invoice.legal_entity
    values = {
        "number": invoice.number, "entity_name": entity.name, "customer_name": customer.name,
        "total": format_currency(invoice.total_amount, invoice.currency, locale=entity.locale),
        "due_date": invoice.due_date.isoformat(), "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
    }
    config = settings()
    return config["subject_template"].format(**values), config["body_template"].format(**values)
