"""The Invoice Delivery Agent's work: render the e-invoice and e-mail it, exactly once per invoice.

The automatic delivery of an invoice is one row (unique per invoice). An attempt is committed as
*in flight* (`attempt_started_at`) before the message is handed to the SMTP server and cleared
with its outcome, so whatever runs the delivery again — RQ's retry, a job that Redis lost and the
relay's watchdog enqueued again, a duplicated event — never starts a second attempt while one may
have reached the server: an attempt left in flight (its worker died) becomes `unknown`, shown as
"outcome unknown — check, then Resend", and is never sent again by itself.

SMTP failures raise so that RQ retries with backoff; the last failure leaves the delivery `failed`
with the error. A customer without an e-mail address is reported, not retried. Any other error is
recorded as a failed attempt with its reason. A person can press Resend, also for many at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from app.transactions import transactional
from app.agents.events import ALIVE, handling_grace_seconds, job_statuses, subscribers
from app.agents.service import enqueue_resend
from app.audit import Actor, record
from app.billing.money import round_money
from app.billing.references import format_creditor_reference
from app.bulk import for_each_id
from app.delivery.mail import build_message, send
from app.errors import DeliveryFailed, DocumentError, MailError
from app.formatting import format_money
from app.extensions import db
from app.models import Customer, Invoice, InvoiceDelivery
from app.models.delivery import DELIVERY_IN_PROGRESS
from app.models.types import utcnow
from app.queues import DELIVERY_TIMEOUT, get_redis, resend_job_id

log = logging.getLogger(__name__)
AGENT = Actor.system("Invoice Delivery Agent")
UNKNOWN_REASON = ("the delivery stopped while the e-mail was being handed to the SMTP server (its worker was "
                  "stopped or crashed): it may or may not have arrived. Check with the customer, then press Resend")


@dataclass
class DeliveryOutcome:
    status: str
    message: str


@dataclass(frozen=True)
class MailTemplates:
    """The e-mail subject and text of an invoice, with {placeholders}: the Invoice Delivery Agent's settings, which
    its handler reads and passes down (app/agents/builtin/invoice_delivery.py)."""
    subject: str
    body: str


def in_flight_seconds() -> int:
    """How long an attempt may be in flight before it is taken as lost: the delivery job's timeout
    (after which RQ stops the job) and a minute; DELIVERY_IN_FLIGHT_SECONDS overrides it."""
    configured = current_app.config.get("DELIVERY_IN_FLIGHT_SECONDS")
    return int(configured) if configured else DELIVERY_TIMEOUT + 60


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


def _emailed_by_a_resend(invoice_id: int) -> InvoiceDelivery | None:
    """A person's resend of the invoice that was sent or is in flight."""
    return db.session.scalar(select(InvoiceDelivery).where(
        InvoiceDelivery.invoice_id == invoice_id, InvoiceDelivery.kind == "resend",
        (InvoiceDelivery.status == "sent") | InvoiceDelivery.attempt_started_at.is_not(None)).limit(1))


def _audit(invoice: Invoice, delivery: InvoiceDelivery) -> dict:
    return dict(legal_entity_id=invoice.legal_entity_id, billing_run_id=invoice.billing_run_id,
                number=invoice.number, kind=delivery.kind, delivery_id=delivery.id)


def deliver_invoice(invoice_id: int, templates: MailTemplates, *, delivery_id: int | None = None, final_attempt: bool = True) -> DeliveryOutcome:
    """Send the invoice (the automatic delivery, or the resend `delivery_id`), at most once at a time."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status not in ("issued", "paid"):
        return DeliveryOutcome("skipped", f"invoice #{invoice_id} is not issued")
    if delivery_id is None:
        other = _emailed_by_a_resend(invoice.id)
        if other is not None:
            db.session.commit()
            return DeliveryOutcome("skipped", f"already e-mailed by delivery #{other.id}: nothing to do")
        delivery = _auto_delivery(invoice)
    else:
        delivery = db.session.get(InvoiceDelivery, delivery_id)
    db.session.commit()
    if delivery.status == "sent":
        return DeliveryOutcome("sent", "already sent: nothing to do")
    if delivery.status == "unknown":
        return DeliveryOutcome("unknown", f"delivery #{delivery.id}: outcome unknown, a person decides")

    # Everything that can fail without side effects comes before the attempt is claimed.
    customer = db.session.get(Customer, invoice.customer_id)
    if not customer.email:
        return _no_email(invoice, delivery, customer)
    try:
        from app.documents.service import checked_document  # WeasyPrint: loaded on the first send, not by every web page

        document = checked_document(invoice)
        db.session.commit()
        subject, body = texts(invoice, customer, templates)
        message_id = f"<invoice-{invoice.id}-{delivery.kind}-{delivery.id}@arbill>"
        message = build_message(customer.email, subject, body, message_id=message_id,
                                attachments=[(document_filename(invoice), "application/pdf", document.pdf)])
    except DocumentError as error:  # the document fails a check (EN 16931 rule, missing glyph): the reason says why
        db.session.rollback()
        log.warning("delivery %s of invoice %s: the document was refused", delivery.id, invoice.id)
        return _failed_before_sending(invoice.id, delivery.id, f"the invoice document was refused: {error}")
    except Exception as error:  # noqa: BLE001 — a bad document or header: recorded, not retried
        db.session.rollback()
        log.exception("delivery %s of invoice %s could not be prepared", delivery.id, invoice.id)
        return _failed_before_sending(invoice.id, delivery.id, f"could not be prepared: {type(error).__name__}: {error}")

    claimed = _claim_attempt(invoice, delivery.id, customer.email, message_id)
    if isinstance(claimed, DeliveryOutcome):
        return claimed
    delivery = claimed
    try:
        send(message)
    except MailError as error:
        return _sending_failed(invoice, delivery, str(error), final_attempt)
    except Exception as error:  # noqa: BLE001 — stopped mid-send (a timeout, …): it may have arrived
        log.exception("delivery %s of invoice %s stopped mid-send", delivery.id, invoice.id)
        db.session.rollback()
        _mark_unknown(delivery.id, f"{UNKNOWN_REASON} ({type(error).__name__})", AGENT)
        db.session.commit()
        return DeliveryOutcome("unknown", f"delivery #{delivery.id}: outcome unknown")
    delivery = db.session.get(InvoiceDelivery, delivery.id)
    delivery.status, delivery.sent_at, delivery.error, delivery.attempt_started_at = "sent", utcnow(), None, None
    record("invoice.delivered", "invoice", invoice.id, AGENT, recipient=delivery.recipient, attempt=delivery.attempts,
           **_audit(invoice, delivery))
    db.session.commit()
    return DeliveryOutcome("sent", f"sent to {delivery.recipient}")


def _claim_attempt(invoice: Invoice, delivery_id: int, recipient: str, message_id: str):
    """Mark an attempt in flight and commit it, under the delivery's row lock; the delivery, or the
    outcome when there is nothing to send (sent already, another attempt in flight, outcome unknown)."""
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.id == delivery_id).with_for_update())
    if delivery.status == "sent":
        db.session.commit()
        return DeliveryOutcome("sent", "already sent: nothing to do")
    if delivery.status == "unknown":
        db.session.commit()
        return DeliveryOutcome("unknown", f"delivery #{delivery.id}: outcome unknown, a person decides")
    if delivery.attempt_started_at is not None:
        if delivery.attempt_started_at > utcnow() - timedelta(seconds=in_flight_seconds()):
            db.session.commit()
            return DeliveryOutcome("in_flight", f"delivery #{delivery.id}: an attempt is in flight")
        _mark_unknown(delivery.id, UNKNOWN_REASON, AGENT)
        db.session.commit()
        return DeliveryOutcome("unknown", f"delivery #{delivery.id}: outcome unknown, a person decides")
    if delivery.kind == "auto" and _emailed_by_a_resend(invoice.id) is not None:
        db.session.commit()
        return DeliveryOutcome("skipped", "already e-mailed by a resend: nothing to do")
    delivery.attempts += 1
    delivery.status, delivery.recipient, delivery.message_id = "sending", recipient, message_id
    delivery.attempt_started_at = utcnow()
    db.session.commit()
    return delivery


def _no_email(invoice: Invoice, delivery: InvoiceDelivery, customer: Customer) -> DeliveryOutcome:
    if delivery.status in ("sent", "unknown") or delivery.attempt_started_at is not None:
        return DeliveryOutcome(delivery.status, "nothing to do")
    delivery.status = "no_email"
    delivery.error = f"customer {customer.name} has no e-mail address: add one on the customer page, then Resend"
    record("invoice.delivery_failed", "invoice", invoice.id, AGENT, reason=delivery.error, **_audit(invoice, delivery))
    db.session.commit()
    return DeliveryOutcome("no_email", delivery.error)


def _failed_before_sending(invoice_id: int, delivery_id: int, reason: str) -> DeliveryOutcome:
    invoice = db.session.get(Invoice, invoice_id)
    delivery = db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.id == delivery_id).with_for_update())
    if delivery.status in ("sent", "unknown") or delivery.attempt_started_at is not None:
        db.session.commit()
        return DeliveryOutcome(delivery.status, "nothing to do")
    delivery.attempts += 1
    delivery.status, delivery.error = "failed", reason
    record("invoice.delivery_failed", "invoice", invoice.id, AGENT, reason=reason, attempt=delivery.attempts,
           **_audit(invoice, delivery))
    db.session.commit()
    return DeliveryOutcome("failed", f"delivery #{delivery.id} failed before sending")


def _sending_failed(invoice: Invoice, delivery: InvoiceDelivery, reason: str, final_attempt: bool) -> DeliveryOutcome:
    """The SMTP server was not reached or refused the message: nothing left; retried unless final."""
    db.session.rollback()
    delivery = db.session.get(InvoiceDelivery, delivery.id)
    delivery.error, delivery.attempt_started_at = reason, None
    delivery.status = "failed" if final_attempt else "retrying"
    record("invoice.delivery_failed" if final_attempt else "invoice.delivery_retrying", "invoice", invoice.id,
           AGENT, reason=reason, attempt=delivery.attempts, **_audit(invoice, delivery))
    db.session.commit()
    # Ids only for RQ (Redis, /rq, the worker's log), without the chained error: the answer can quote the address.
    raise DeliveryFailed(f"delivery {delivery.id} of invoice {invoice.id} failed: "
                         "the invoice page has the SMTP server's answer") from None


def _mark_unknown(delivery_id: int, reason: str, actor: Actor) -> None:
    """An attempt in flight whose outcome will never be known (the caller commits)."""
    delivery = db.session.get(InvoiceDelivery, delivery_id)
    invoice = db.session.get(Invoice, delivery.invoice_id)
    delivery.status, delivery.error, delivery.attempt_started_at = "unknown", reason, None
    record("invoice.delivery_unknown", "invoice", invoice.id, actor, reason=reason, attempt=delivery.attempts,
           **_audit(invoice, delivery))


@transactional
def request_resend(invoice: Invoice, actor: Actor) -> InvoiceDelivery:
    """A person asks to send the invoice again (audited, committed); the caller enqueues the job."""
    if invoice.status not in ("issued", "paid"):
        raise ValueError(f"invoice {invoice.number or '(draft)'} is {invoice.status}: only posted invoices are sent")
    delivery = InvoiceDelivery(invoice_id=invoice.id, kind="resend", status="sending", requested_by=actor.label)
    db.session.add(delivery)
    db.session.flush()
    record("invoice.resend_requested", "invoice", invoice.id, actor, legal_entity_id=invoice.legal_entity_id,
           billing_run_id=invoice.billing_run_id, number=invoice.number, delivery_id=delivery.id)
    return delivery


def settle_lost_attempts(now: datetime | None = None) -> int:
    """Deliveries whose attempt has been in flight longer than any job may run lost their worker
    mid-send: their outcome is unknown. Nothing is sent again: the e-mail may have left."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=in_flight_seconds())
    lost = list(db.session.scalars(select(InvoiceDelivery.id).where(
        InvoiceDelivery.attempt_started_at.is_not(None), InvoiceDelivery.attempt_started_at < cutoff)))
    watchdog = Actor.system("delivery watchdog")
    for delivery_id in lost:
        _mark_unknown(delivery_id, UNKNOWN_REASON, watchdog)
    db.session.commit()
    return len(lost)


def requeue_lost_resends(now: datetime | None = None) -> int:
    """Enqueue again the resends a person asked for whose job Redis lost (not started, not retrying)."""
    now = now or utcnow()
    waiting = list(db.session.scalars(select(InvoiceDelivery).where(
        InvoiceDelivery.kind == "resend", InvoiceDelivery.status.in_(DELIVERY_IN_PROGRESS),
        InvoiceDelivery.attempt_started_at.is_(None),
        InvoiceDelivery.created_at < now - timedelta(seconds=handling_grace_seconds()))))
    if not waiting:
        db.session.rollback()
        return 0
    statuses = job_statuses([resend_job_id(d.id) for d in waiting])
    lost = [d for d, status in zip(waiting, statuses) if status not in ALIVE]
    watchdog = Actor.system("delivery watchdog")
    for delivery in lost:
        invoice = db.session.get(Invoice, delivery.invoice_id)
        record("invoice.resend_requeued", "invoice", invoice.id, watchdog,
               reason="Redis lost the resend's job (Redis restarted or was flushed)", **_audit(invoice, delivery))
    db.session.commit()
    enqueue_resends(lost)
    return len(lost)


def latest_delivery(invoice_id: int) -> InvoiceDelivery | None:
    return db.session.scalar(select(InvoiceDelivery).where(InvoiceDelivery.invoice_id == invoice_id)
                             .order_by(InvoiceDelivery.id.desc()).limit(1))


# ------------------------------------------------------------------ the state shown live after posting
@dataclass(frozen=True)
class DeliveryState:
    """Where a posted invoice's e-mail is, as the invoice page and list show it (polling until `final`).

    queued: waiting for the Invoice Delivery Agent; sending: handed to the SMTP server now; retrying: the
    server refused or was unreachable, tried again later; sent; failed; no_email: the customer has no
    address; unknown: a worker stopped mid-send; not_emailed: the agent is off, or nothing happened within
    UNDELIVERED_AFTER_MINUTES."""
    state: str
    recipient: str | None = None
    at: datetime | None = None
    reason: str | None = None
    resend: bool = False  # the latest delivery is a person's resend

    @property
    def final(self) -> bool:
        return self.state not in ("queued", "sending", "retrying")

    @property
    def can_retry(self) -> bool:
        return self.state in ("failed", "no_email", "unknown", "not_emailed")


def delivery_states(invoices: list[Invoice], now: datetime | None = None) -> dict[int, DeliveryState]:
    """Invoice id → its e-mail's state, for the posted ones of `invoices` (drafts have none); a few
    queries whatever their number."""

    posted = [invoice for invoice in invoices if invoice.status != "draft" and invoice.posted_at is not None]
    if not posted:
        return {}
    now = now or utcnow()
    latest: dict[int, object] = {}
    for row in sorted(for_each_id(select(InvoiceDelivery.id, InvoiceDelivery.kind, InvoiceDelivery.status,
                                         InvoiceDelivery.recipient, InvoiceDelivery.error, InvoiceDelivery.sent_at,
                                         InvoiceDelivery.attempt_started_at),
                                  InvoiceDelivery.invoice_id, [i.id for i in posted]), key=lambda r: r.id):
        latest[row.key] = row
    agent_on = {kind: "invoice_delivery" in subscribers(f"{kind}.issued") for kind in ("invoice", "credit_note")}
    waited = timedelta(minutes=undelivered_minutes())
    states = {}
    for invoice in posted:
        row = latest.get(invoice.id)
        if row is None:
            if not agent_on.get(invoice.kind, False):
                states[invoice.id] = DeliveryState("not_emailed", reason="the Invoice Delivery Agent is off")
            elif invoice.posted_at < now - waited:
                states[invoice.id] = DeliveryState(
                    "not_emailed", at=invoice.posted_at,
                    reason=f"not picked up within {undelivered_minutes()} minutes of being issued")
            else:
                states[invoice.id] = DeliveryState("queued")
            continue
        state = row.status
        if state == "sending":
            state = "sending" if row.attempt_started_at is not None else "queued"
        states[invoice.id] = DeliveryState(state, row.recipient, row.sent_at or row.attempt_started_at,
                                           row.error, row.kind == "resend")
    return states


def delivery_state(invoice: Invoice) -> DeliveryState | None:
    return delivery_states([invoice]).get(invoice.id)


# ------------------------------------------------------------------ invoices not e-mailed
# What the invoice list's "E-mail" filter offers: not e-mailed at all, and two kinds of it.
DELIVERY_FILTERS = {
    "undelivered": "Not e-mailed",
    "unknown": "Outcome unknown",
    "failed": "Delivery failed",
}


def undelivered_minutes() -> int:
    """An issued invoice not e-mailed after this many minutes counts as undelivered (UNDELIVERED_AFTER_MINUTES)."""
    return int(current_app.config.get("UNDELIVERED_AFTER_MINUTES", 60))


def delivery_condition(kind: str, now: datetime | None = None, older_than_minutes: int | None = None):
    """SQL for invoices that were issued more than `older_than_minutes` ago and never e-mailed (`undelivered`);
    `unknown`/`failed` narrow it to those whose delivery's outcome is unknown / which failed."""
    now = now or utcnow()
    minutes = undelivered_minutes() if older_than_minutes is None else older_than_minutes
    sent = exists().where(InvoiceDelivery.invoice_id == Invoice.id, InvoiceDelivery.status == "sent")
    condition = and_(Invoice.status.in_(("issued", "paid")), Invoice.posted_at < now - timedelta(minutes=minutes),
                     ~sent)
    statuses = {"unknown": ("unknown",), "failed": ("failed", "no_email")}.get(kind)
    if statuses:
        condition = and_(condition, exists().where(InvoiceDelivery.invoice_id == Invoice.id,
                                                   InvoiceDelivery.status.in_(statuses)))
    return condition


@dataclass
class BulkResend:
    requested: list[InvoiceDelivery]
    in_progress: int = 0  # a delivery of theirs is still queued or being retried
    no_email: int = 0  # their customer has no e-mail address


@dataclass
class BulkResendPlan:
    """Which invoices a bulk resend would e-mail again now, and which it leaves alone and why (the confirm
    step). `kind`: the E-mail filter it came from, or "selected" (invoices ticked on the list, or all matching
    its filters)."""
    kind: str
    invoices: list[Invoice]
    in_progress: int = 0
    no_email: int = 0
    left_alone: list[tuple[Invoice, str]] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Decimal]:
        """Currency → total of the invoices to e-mail again."""
        totals: dict[str, Decimal] = {}
        for invoice in self.invoices:
            totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.total_amount
        return {currency: round_money(amount, currency) for currency, amount in sorted(totals.items())}

    @property
    def customers(self) -> int:
        return len({invoice.customer_id for invoice in self.invoices})

    def facts(self) -> dict:
        return {"kind": self.kind, "invoices": sorted(invoice.id for invoice in self.invoices),
                "left_alone": sorted(invoice.id for invoice, _reason in self.left_alone)}


def resend_plan(invoices: list[Invoice], kind: str = "selected") -> BulkResendPlan:
    """Of `invoices`, those a resend e-mails again; the rest left alone with the reason: not posted, a delivery
    still in progress, no customer e-mail address. Two queries whatever their number; writes nothing."""

    busy = {row.key for row in for_each_id(select(InvoiceDelivery.id).where(
        InvoiceDelivery.status.in_(DELIVERY_IN_PROGRESS)), InvoiceDelivery.invoice_id, [i.id for i in invoices])}
    emails = {row.key: (row.email or "").strip() for row in for_each_id(
        select(Customer.email), Customer.id, sorted({i.customer_id for i in invoices}))}
    plan = BulkResendPlan(kind, [])
    for invoice in invoices:
        if invoice.status not in ("issued", "paid"):
            reason = ("a draft: it is e-mailed when it is posted" if invoice.status == "draft" else
                      f"{invoice.status}: only issued and paid invoices are e-mailed again")
        elif invoice.id in busy:
            plan.in_progress += 1
            reason = "its e-mail is still being sent or retried"
        elif not emails.get(invoice.customer_id):
            plan.no_email += 1
            reason = "the customer has no e-mail address"
        else:
            plan.invoices.append(invoice)
            continue
        plan.left_alone.append((invoice, reason))
    return plan


def bulk_resend_plan(legal_entity_id: int, kind: str = "undelivered", older_than_minutes: int | None = None,
                     now: datetime | None = None) -> BulkResendPlan:
    """Every invoice of the entity matching the `kind` filter, except those whose delivery is still in
    progress and those whose customer has no address (both counted). Writes nothing."""
    invoices = list(db.session.scalars(
        select(Invoice).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.legal_entity_id == legal_entity_id, delivery_condition(kind, now, older_than_minutes))
        .order_by(Invoice.id)))
    return resend_plan(invoices, kind)


@transactional
def request_bulk_resend(legal_entity_id: int, actor: Actor, kind: str = "undelivered",
                        older_than_minutes: int | None = None, now: datetime | None = None, *,
                        plan: BulkResendPlan | None = None, confirmed: bool = False) -> BulkResend:
    """A resend for every invoice of `plan` (default: bulk_resend_plan's now). Committed; the caller then
    enqueues them (`enqueue_resends`); a resend whose job is lost is enqueued again by the sweep.
    `confirmed`: a person confirmed exactly this plan (the web's confirm step); the audit says what they saw."""
    plan = plan or bulk_resend_plan(legal_entity_id, kind, older_than_minutes, now)
    if confirmed:
        record("invoice.bulk_resend_confirmed", "legal_entity", legal_entity_id, actor,
               legal_entity_id=legal_entity_id, kind=plan.kind, invoices=len(plan.invoices), customers=plan.customers,
               totals={currency: str(amount) for currency, amount in plan.totals.items()},
               left_alone={"in_progress": plan.in_progress, "no_email": plan.no_email,
                           "not_posted": len(plan.left_alone) - plan.in_progress - plan.no_email})
    return BulkResend([request_resend(invoice, actor) for invoice in plan.invoices], plan.in_progress, plan.no_email)


def enqueue_resends(deliveries: list[InvoiceDelivery]) -> None:
    """Hand committed resends to the delivery queue in one pipeline."""
    pipeline = get_redis().pipeline()
    for delivery in deliveries:
        enqueue_resend(delivery.invoice_id, delivery.id, pipeline=pipeline)
    pipeline.execute()


def document_filename(invoice: Invoice) -> str:
    """Invoice-DE01-2026-000001.pdf, CreditNote-DE01-CN-2026-000001.pdf."""
    return f"{'CreditNote' if invoice.kind == 'credit_note' else 'Invoice'}-{invoice.number}.pdf"


def _credit_note_texts(note: Invoice, customer: Customer) -> tuple[str, str]:
    """A credit note's e-mail: fixed wording (the agent's templates speak of an invoice that is due)."""
    entity, credited = note.legal_entity, note.credited_invoice
    total = format_money(note.total_amount, note.currency, entity.locale)
    subject = f"Credit note {note.number} from {entity.name}"
    body = (f"Dear {customer.name},\n\nplease find attached credit note {note.number}, which corrects invoice "
            f"{credited.number} of {credited.issue_date.isoformat()} by {total}.\nReason: {note.credit_reason}\n\n"
            f"There is nothing for you to pay.\n\nKind regards,\n{entity.name}")
    return subject, body


def texts(invoice: Invoice, customer: Customer, templates: MailTemplates) -> tuple[str, str]:
    """The e-mail's subject and text: an invoice's from the templates, a credit note's in fixed wording."""
    if invoice.kind == "credit_note":
        return _credit_note_texts(invoice, customer)
    entity = invoice.legal_entity
    values = {
        "number": invoice.number, "entity_name": entity.name, "customer_name": customer.name,
        "total": format_money(invoice.total_amount, invoice.currency, entity.locale),
        "due_date": invoice.due_date.isoformat(), "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "payment_reference": format_creditor_reference(invoice.creditor_reference),
    }
    return templates.subject.format(**values), templates.body.format(**values)
