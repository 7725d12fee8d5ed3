"""The Payment Collection Agent: an issued invoice of a SEPA customer joins the entity's open pain.008 batch;
a returned debit is presented again on the configured days (app/payments/collection.py)."""
from __future__ import annotations

from app.agents.base import AgentSpec, Setting
from app.extensions import db
from app.models import AgentDefinition, Event, LegalEntity
from app.payments.collection import on_retry_scheduled, start_collection


def on_event(event: Event, agent: AgentDefinition | None = None) -> str | None:
    """The collection's status (the job's result in RQ: its message can name the customer and IBAN)."""
    if event.type not in ("invoice.issued", "payment.retry_scheduled") or "invoice_id" not in (event.payload or {}):
        return None  # an event this agent does not act on (an admin may route any event to it)
    invoice_id = int(event.payload["invoice_id"])
    if event.type == "invoice.issued":
        return start_collection(invoice_id).status
    if event.type == "payment.retry_scheduled":
        entity = db.session.get(LegalEntity, event.legal_entity_id)
        return on_retry_scheduled(invoice_id, entity.today()).status
    return None


SPEC = AgentSpec(
    key="payment_collection",
    name="Payment Collection Agent",
    description=(
        "Reads the customer's payment method: manual invoices wait for a payment to be recorded; SEPA direct "
        "debit adds the invoice to the legal entity's open pain.008 batch. A returned debit is retried on the "
        "configured days after the failure, then the invoice is flagged and finance is notified."
    ),
    trigger_events=("invoice.issued", "payment.retry_scheduled", "manual.trigger"),
    settings=(
        Setting("retry_days", "Retry on days after a failure", "days", "3,7,14",
                "A returned debit is presented again on these days after the (first) failure.", maximum=90),
        Setting("collection_lead_days", "Collection lead time (days)", "int", 2,
                "Requested collection date = the day the batch is closed + this many days.", 1, 30),
    ),
    queue="collection",
    on_event=on_event,
    subscribes=("invoice.issued", "payment.retry_scheduled"),
)
