"""The Invoice Delivery Agent's event handler: `invoice.issued` / `credit_note.issued` → render and e-mail
the document (a credit note is delivered like an invoice, and never collected)."""
from __future__ import annotations

from rq import get_current_job

from app.delivery.service import deliver_invoice
from app.errors import NotActedYet
from app.models import Event

DELIVERED_EVENTS = ("invoice.issued", "credit_note.issued")


def is_final_attempt() -> bool:
    """True when RQ will not retry this job again (or when not running under RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def on_event(event: Event) -> str | None:
    """The delivery's status (the job's result in RQ: its message can name the customer)."""
    if event.type not in DELIVERED_EVENTS or "invoice_id" not in (event.payload or {}):
        return None  # an event this agent does not act on
    outcome = deliver_invoice(int(event.payload["invoice_id"]), final_attempt=is_final_attempt())
    if outcome.status == "in_flight":  # another job is handing the e-mail to the SMTP server right now
        raise NotActedYet(outcome.message)
    return outcome.status
