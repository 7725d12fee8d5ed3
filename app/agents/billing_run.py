"""The Billing Run Agent's event handler: `billing.run_requested` starts a run of that entity."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.audit import Actor, record
from app.billing.runs import start_billing_run
from app.errors import RunRefused
from app.extensions import db
from app.models import Event, LegalEntity


def on_event(event: Event):
    """Start a run for the event's legal entity. The event id is the run's trigger: seen twice, one run."""
    payload = event.payload or {}
    entity = None
    if event.legal_entity_id is not None:
        entity = db.session.get(LegalEntity, event.legal_entity_id)
    elif payload.get("entity"):
        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == str(payload["entity"]).upper()))
    if entity is None:
        record("agent.event_ignored", "event", event.id, Actor.system("billing_run"),
               reason=f"event {event.type} names no known legal entity")
        db.session.commit()
        return None
    as_of = date.fromisoformat(payload["as_of"]) if payload.get("as_of") else None
    try:
        result = start_billing_run(entity, as_of, "event", Actor.for_event(event), bool(payload.get("dry_run")),
                                   trigger_ref=f"event:{event.id}", event_depth=event.depth + 1,
                                   ahead_of_time=bool(payload.get("ahead_of_time")))
    except RunRefused as refused:
        record("agent.event_refused", "event", event.id, Actor.system("billing_run"),
               legal_entity_id=entity.id, reason=str(refused))
        db.session.commit()
        return None
    return result.run.id
