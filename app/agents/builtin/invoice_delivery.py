"""The Invoice Delivery Agent: `invoice.issued` / `credit_note.issued` → render the document as PDF/A-3 with its
e-invoice and e-mail it (app/delivery/service.py). A credit note is delivered like an invoice, and never collected."""
from __future__ import annotations

from rq import get_current_job

from app.agents.base import AgentSpec, Setting
from app.agents.settings import agent_settings
from app.delivery.service import DeliveryOutcome, MailTemplates, deliver_invoice
from app.errors import NotActedYet
from app.models import AgentDefinition, Event
from app.queues import DELIVERY_TIMEOUT
from app.records.validation import FieldError, one_line
from app.text import check_placeholders

DELIVERED_EVENTS = ("invoice.issued", "credit_note.issued")


def is_final_attempt() -> bool:
    """True when RQ will not retry this job again (or when not running under RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def on_event(event: Event, agent: AgentDefinition | None = None) -> str | None:
    """The delivery's status (the job's result in RQ: its message can name the customer)."""
    if event.type not in DELIVERED_EVENTS or "invoice_id" not in (event.payload or {}):
        return None  # an event this agent does not act on
    outcome = deliver(int(event.payload["invoice_id"]), final_attempt=is_final_attempt())
    if outcome.status == "in_flight":  # another job is handing the e-mail to the SMTP server right now
        raise NotActedYet(outcome.message)
    return outcome.status


def mail_templates() -> MailTemplates:
    """This agent's e-mail subject and text, as an admin set them (Agents > Invoice Delivery > Configuration)."""
    settings = agent_settings(SPEC.key)
    return MailTemplates(settings["subject_template"], settings["body_template"])


def deliver(invoice_id: int, *, delivery_id: int | None = None, final_attempt: bool = True) -> DeliveryOutcome:
    """Deliver the invoice (the automatic delivery, or the resend `delivery_id`) with this agent's settings: the
    handler reads them; the delivery service gets them as plain values."""
    return deliver_invoice(invoice_id, mail_templates(), delivery_id=delivery_id, final_attempt=final_attempt)


# Placeholders the delivery e-mail templates may use.
# payment_reference: the invoice's ISO 11649 RF reference in groups of 4, as printed on the PDF
MAIL_PLACEHOLDERS = ("number", "entity_name", "customer_name", "total", "due_date", "period_start", "period_end",
                     "payment_reference")


def check_mail_template(template: str) -> None:
    """Refuse templates with unknown {placeholders} or broken braces, naming the problem."""
    check_placeholders(template, MAIL_PLACEHOLDERS)


def check_subject_template(template: str) -> None:
    """A subject is one header line: no line breaks or other control characters (they would break the
    e-mail's headers), and the placeholders of check_mail_template."""
    try:
        one_line(template, "the subject")
    except FieldError as error:
        raise ValueError(str(error)) from None
    check_mail_template(template)


SPEC = AgentSpec(
    key="invoice_delivery",
    name="Invoice Delivery Agent",
    description=(
        "Renders each issued invoice as a PDF/A-3 with an embedded EN 16931 e-invoice (Factur-X) and "
        "e-mails it to the customer. Sends once per invoice; SMTP failures are retried with backoff."
    ),
    trigger_events=("invoice.issued", "credit_note.issued", "manual.trigger"),
    settings=(
        Setting("subject_template", "E-mail subject", "text", "Invoice {number} from {entity_name}",
                "Placeholders: " + ", ".join("{" + p + "}" for p in MAIL_PLACEHOLDERS), validator=check_subject_template),
        Setting("body_template", "E-mail text", "text",
                "Dear {customer_name},\n\nplease find attached invoice {number} for the period {period_start} to "
                "{period_end}, total {total}, due on {due_date}.\n\nKind regards,\n{entity_name}",
                "Placeholders as in the subject.", validator=check_mail_template),
        Setting("retry_minutes", "Retry after (minutes)", "days", "1,5,30",
                "When sending fails, try again after these many minutes; then report the failure.", maximum=1440),
    ),
    queue="delivery",
    on_event=on_event,
    subscribes=DELIVERED_EVENTS,
    retry_setting="retry_minutes",
    job_timeout=DELIVERY_TIMEOUT,
)
