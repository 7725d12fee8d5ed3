"""The Billing Run Agent: bills every active contract's due periods for one legal entity (app/billing/runs.py).

A run starts from its Run button (preview, then Confirm), a schedule, `flask agents run billing_run`, or a
`billing.run_requested` event; each start is one billing run, and the same trigger never starts two.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.audit import Actor, record
from app.billing.runs import RunRefused, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, Event, LegalEntity

# How an agent run's trigger is recorded on the billing run it starts.
RUN_TRIGGER = {"manual": "manual", "test": "manual", "schedule": "schedule", "cli": "cli"}


def on_event(event: Event, agent: AgentDefinition | None = None):
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


def run(request: RunRequest) -> RunOutcome:
    """Start a billing run (a test run is a dry run: it writes no invoice). The billing run has its own record."""
    try:
        result = start_billing_run(request.entity, request.as_of, RUN_TRIGGER[request.trigger], request.actor,
                                   request.test, trigger_ref=request.trigger_ref or None)
    except RunRefused as refused:
        return RunOutcome(f"refused: {refused}", ok=False)
    return RunOutcome(result.message, billing_run_id=result.run.id)


SPEC = AgentSpec(
    key="billing_run",
    name="Billing Run Agent",
    description=(
        "Finds active recurring contracts due for billing, generates AR invoices for every due period "
        "that has none yet (catching up missed periods), and emits events for invoice delivery and "
        "payment collection. Runs in Code mode: pure Python, no LLM calls, zero API cost."
    ),
    trigger_events=("schedule.triggered", "manual.trigger", "billing.run_requested"),
    settings=(
        Setting("auto_post", "Post invoices at once", "bool", True,
                "Give invoices their numbers and issue them immediately; off keeps them as drafts for review."),
        Setting("payment_terms_days", "Default payment terms (days)", "int", 14,
                "Used when neither the contract nor the legal entity sets payment terms.", 0, 365),
        Setting("chunk_size", "Contracts per chunk", "int", 2000,
                "Contracts billed per transaction and per worker job; larger is faster, smaller isolates more.", 10, 10000),
        Setting("as_of_offset_days", "As-of offset (days)", "int", 0,
                "Bill periods starting up to this many days after today (negative: before).", -31, 31),
    ),
    queue="billing",
    on_event=on_event,
    run=run,
    subscribes=("billing.run_requested",),
    bills=True,
)
