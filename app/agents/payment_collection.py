"""The Payment Collection Agent's event handler."""
from __future__ import annotations


from app.extensions import db
from app.models import Event, LegalEntity
from app.payments.collection import on_retry_scheduled, start_collection


def on_event(event: Event) -> str | None:
    """The collection's status (the job's result in RQ: its message can name the customer and IBAN)."""
    if event.type not in ("invoice.issued", "payment.retry_scheduled") or "invoice_id" not in (event.payload or {}):
        return None  # an event this agent does not act on (an admin may route any event to it)
    invoice_id = int(event.payload["invoice_id"])
    if event.type == "invoice.issued":
        return start_collection(invoice_id).status
    if event.type == "payment.retry_scheduled":
        entity = db.session.get(LegalEntity, event.legal_entity_id)
        today = entity.today()
        return on_retry_scheduled(invoice_id, today).status
    return None
