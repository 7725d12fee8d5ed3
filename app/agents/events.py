"""The outbox and its relay.

Events are written to the `events` table in the same transaction as the change they describe.
The relay enqueues a job for every enabled agent subscribed to an event's type and marks the
event dispatched. Delivery is at least once: if Redis is down nothing is marked and a later relay
catches up, so every consumer must tolerate seeing an event twice.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from app.audit import Actor, record
from app.bulk import copy_rows, row_encoder
from app.extensions import db
from app.models import AgentDefinition, Event
from app.models.types import utcnow

log = logging.getLogger(__name__)

def max_chain_depth() -> int:
    """An event chain deeper than this is stopped and reported (a loop guard): EVENT_CHAIN_MAX_DEPTH."""
    from flask import current_app

    return int(current_app.config.get("EVENT_CHAIN_MAX_DEPTH", 5))


EVENT_COLUMNS = ("type", "payload", "legal_entity_id", "billing_run_id", "depth", "created_at")


def event_row(type_: str, payload: dict[str, Any], *, legal_entity_id: int | None = None,
              billing_run_id: int | None = None, depth: int = 0,
              created_at: datetime | None = None) -> tuple[Any, ...]:
    """A row for the outbox, in EVENT_COLUMNS order (for emit_many)."""
    return (type_, payload, legal_entity_id, billing_run_id, depth, created_at or utcnow())


def emit(type_: str, payload: dict[str, Any], **kwargs: Any) -> None:
    """Add one event to the outbox in the current transaction."""
    emit_many([event_row(type_, payload, **kwargs)])


def emit_many(rows: list[Sequence[Any]], *, encoded: bool = False) -> None:
    """Add event_row()s to the outbox in the current transaction (COPY on PostgreSQL); `encoded`:
    rows made by event_encoder() (bulk.row_encoder)."""
    if rows:
        copy_rows(Event.__table__, EVENT_COLUMNS, rows, encoded=encoded)


def event_encoder() -> Callable[[Sequence[Any]], list[Any]]:
    """Encodes event_row()s ahead of emit_many(..., encoded=True), e.g. before taking a lock."""
    return row_encoder(Event.__table__, EVENT_COLUMNS)


@dataclass
class RelayResult:
    dispatched: int = 0
    jobs: int = 0
    stopped: int = 0


def subscribers(event_type: str) -> list[str]:
    """Keys of the enabled agents that an enabled orchestration rule runs on `event_type`."""
    from app.agents.registry import AGENTS
    from app.models import OrchestrationRule

    keys = db.session.scalars(
        select(OrchestrationRule.agent_key)
        .join(AgentDefinition, AgentDefinition.key == OrchestrationRule.agent_key)
        .where(OrchestrationRule.event_type == event_type, OrchestrationRule.enabled.is_(True),
               AgentDefinition.enabled.is_(True))
        .order_by(OrchestrationRule.id)
    )
    return [key for key in keys if key in AGENTS]


def relay_outbox(batch_size: int = 200, max_batches: int | None = None) -> RelayResult:
    """Dispatch undispatched events, oldest first, in batches; returns what was done.

    A batch's jobs go to Redis in one pipeline before the batch is marked dispatched; if the commit
    fails after that, the events are dispatched again later (consumers tolerate a second delivery).
    """
    from app.agents.jobs import enqueue_agent_event, retry_policy
    from app.queues import get_redis

    result = RelayResult()
    batches = 0
    limit = max_chain_depth()
    agents_of: dict[str, list[str]] = {}  # event type → subscribed agents, looked up once per relay
    retry_of: dict[str, Any] = {}  # agent → its RQ Retry
    while max_batches is None or batches < max_batches:
        batches += 1
        query = select(Event).where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(batch_size)
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        events = list(db.session.scalars(query))
        if not events:
            db.session.rollback()
            break
        for event_type in {e.type for e in events} - agents_of.keys():
            agents_of[event_type] = subscribers(event_type)
            for key in agents_of[event_type]:
                if key not in retry_of:
                    retry_of[key] = retry_policy(key)
        pipeline = get_redis().pipeline()
        for event in events:
            if event.depth > limit:
                record("workflow.stopped", "event", event.id, Actor.system("relay"),
                       legal_entity_id=event.legal_entity_id, billing_run_id=event.billing_run_id,
                       event_type=event.type, depth=event.depth,
                       reason=f"event chain deeper than {limit} steps: stopped so it cannot loop forever")
                result.stopped += 1
                continue
            for key in agents_of[event.type]:
                job_id = enqueue_agent_event(key, event.id, retry_of[key], pipeline=pipeline)
                record("workflow.step_fired", "event", event.id, Actor.system("relay"),
                       legal_entity_id=event.legal_entity_id, billing_run_id=event.billing_run_id,
                       event_type=event.type, agent=key, job_id=job_id)
                result.jobs += 1
        pipeline.execute()
        db.session.execute(
            update(Event).where(Event.id.in_([e.id for e in events])).values(dispatched_at=utcnow())
        )
        db.session.commit()
        result.dispatched += len(events)
    return result
