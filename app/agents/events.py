"""The outbox's relay (the writer, `emit`, is app/outbox.py).

Events are written to the `events` table in the same transaction as the change they describe.
The relay records a handling for every enabled agent subscribed to an event's type, marks the event
dispatched and enqueues the agents' jobs; each job marks its handling done when its agent has
acted. The watchdog (`requeue_unhandled`, on the relay's minute clock) enqueues again what Redis
lost. Delivery is at least once, so every consumer tolerates seeing an event twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import func, select, update

from app.audit import Actor, record
from app.bulk import copy_rows, for_each_id
from app.extensions import db
from app.agents.registry import spec_for_key
from app.agents.service import enqueue_agent_event, retry_policy
from app.models import AgentDefinition, Event, EventHandling, OrchestrationRule
from app.models.types import utcnow
from app.queues import agent_event_job_id, get_redis

log = logging.getLogger(__name__)

def max_chain_depth() -> int:
    """An event chain deeper than this is stopped and reported (a loop guard): EVENT_CHAIN_MAX_DEPTH."""
    return int(current_app.config.get("EVENT_CHAIN_MAX_DEPTH", 5))


@dataclass
class RelayResult:
    dispatched: int = 0
    jobs: int = 0
    stopped: int = 0


def subscribers(event_type: str) -> list[str]:
    """Keys of the enabled agents that an enabled orchestration rule runs on `event_type`."""
    keys = db.session.scalars(
        select(OrchestrationRule.agent_key)
        .join(AgentDefinition, AgentDefinition.key == OrchestrationRule.agent_key)
        .where(OrchestrationRule.event_type == event_type, OrchestrationRule.enabled.is_(True),
               AgentDefinition.enabled.is_(True))
        .order_by(OrchestrationRule.id)
    )
    return [key for key in keys if _handles_events(key)]


def _handles_events(key: str) -> bool:
    spec = spec_for_key(key)
    return spec is not None and spec.on_event is not None


HANDLING_COLUMNS = ("event_id", "agent_key", "status", "enqueued_at", "enqueues")


class _Retries(dict):
    """Agent key → its RQ Retry, looked up once per relay."""

    def __missing__(self, key: str):
        self[key] = retry_policy(key)
        return self[key]


def relay_outbox(batch_size: int = 200, max_batches: int | None = None) -> RelayResult:
    """Dispatch undispatched events, oldest first, in batches; returns what was done.

    For every subscribed agent a handling row is committed with the event marked dispatched, then the
    batch's jobs go to Redis in one pipeline. If Redis does not take them, or loses them later, the
    handlings stay pending and `requeue_unhandled` enqueues them again: an event is done when each
    agent has acted on it, not when Redis took a job.
    """
    result = RelayResult()
    batches = 0
    limit = max_chain_depth()
    agents_of: dict[str, list[str]] = {}  # event type → subscribed agents, looked up once per relay
    retry_of = _Retries()
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
        now = utcnow()
        handed_on: list[tuple[str, int]] = []
        for event in events:
            if event.depth > limit:
                record("workflow.stopped", "event", event.id, Actor.system("Orchestration"),
                       legal_entity_id=event.legal_entity_id, billing_run_id=event.billing_run_id,
                       event_type=event.type, depth=event.depth,
                       reason=f"event chain deeper than {limit} steps: stopped so it cannot loop forever")
                result.stopped += 1
                continue
            for key in agents_of[event.type]:
                handed_on.append((key, event.id))
                record("workflow.step_fired", "event", event.id, Actor.system("Orchestration"),
                       legal_entity_id=event.legal_entity_id, billing_run_id=event.billing_run_id,
                       event_type=event.type, agent=key, job_id=agent_event_job_id(key, event.id))
        _record_handlings(handed_on, now)
        db.session.execute(
            update(Event).where(Event.id.in_([e.id for e in events])).values(dispatched_at=now)
        )
        db.session.commit()
        _hand_to_redis(handed_on, retry_of)
        result.jobs += len(handed_on)
        result.dispatched += len(events)
    return result


def _record_handlings(handed_on: list[tuple[str, int]], now: datetime) -> None:
    """Pending handlings for the (agent, event) pairs; an event handed on again (its dispatch undone by
    hand) has its handlings made pending again."""
    if not handed_on:
        return
    existing = {(row.agent_key, row.key) for row in for_each_id(
        select(EventHandling.agent_key), EventHandling.event_id, sorted({event_id for _, event_id in handed_on}))}
    for key, event_id in existing:
        db.session.execute(update(EventHandling).where(EventHandling.event_id == event_id,
                                                       EventHandling.agent_key == key)
                           .values(status="pending", enqueued_at=now, enqueues=EventHandling.enqueues + 1,
                                   handled_at=None, error=None))
    copy_rows(EventHandling.__table__, HANDLING_COLUMNS,
              [(event_id, key, "pending", now, 1) for key, event_id in handed_on if (key, event_id) not in existing])


def _hand_to_redis(jobs: list[tuple[str, int]], retry_of: "_Retries") -> None:
    """Enqueue the agents' jobs for (agent, event) pairs whose handlings are committed, in one pipeline.
    If Redis refuses, their handlings are marked not enqueued, for the watchdog's next pass."""
    if not jobs:
        return
    try:
        pipeline = get_redis().pipeline()
        for key, event_id in jobs:
            enqueue_agent_event(key, event_id, retry_of[key], pipeline=pipeline)
        pipeline.execute()
    except RedisError:
        for key, event_id in jobs:
            db.session.execute(update(EventHandling).where(EventHandling.event_id == event_id,
                                                           EventHandling.agent_key == key)
                               .values(enqueued_at=None))
        db.session.commit()
        raise


def mark_handled(event_id: int, agent_key: str) -> None:
    """The agent has acted on the event (its job calls this when its handler returns) and commits."""
    db.session.execute(update(EventHandling)
                       .where(EventHandling.event_id == event_id, EventHandling.agent_key == agent_key)
                       .values(status="done", handled_at=utcnow(), error=None))
    db.session.commit()


# ------------------------------------------------------------------ the watchdog
def handling_grace_seconds() -> int:
    """How long a handed-on event may wait before the watchdog looks whether its job still exists."""
    return int(current_app.config.get("EVENT_HANDLING_GRACE_SECONDS", 120))


@dataclass
class WatchResult:
    requeued: int = 0
    failed: int = 0
    waiting: int = 0  # past the grace period, their jobs still queued or running


ALIVE = frozenset({"queued", "started", "scheduled", "deferred"})


def job_statuses(job_ids: list[str]) -> list[str | None]:
    """RQ's status of each job ("queued", "failed", …), None for a job Redis does not have; one pipeline
    of HGETs (fetching whole jobs cost 0.7 ms each, and a backlog is looked at every minute)."""
    pipeline = get_redis().pipeline(transaction=False)
    for job_id in job_ids:
        pipeline.hget(Job.key_for(job_id), "status")
    return [status.decode() if status is not None else None for status in pipeline.execute()]
GIVEN_UP = frozenset({"failed", "stopped", "canceled"})


def requeue_unhandled(now: datetime | None = None, batch_size: int = 1000) -> WatchResult:
    """Enqueue again the jobs of handlings still pending past the grace period whose job Redis no longer
    has (Redis restarted or was flushed, a relay stopped between commit and enqueue). A job that RQ gave
    up on (failed after its retries, stopped by a person) marks its handling failed, shown by
    `flask events pending` and /healthz; a job still queued or running is left alone. Idempotent: every
    agent does nothing when it sees an event a second time."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=handling_grace_seconds())
    result = WatchResult()
    retry_of = _Retries()
    watchdog = Actor.system("relay watchdog")
    last_id = 0
    while True:
        rows = db.session.execute(
            select(EventHandling, Event)
            .join(Event, Event.id == EventHandling.event_id)
            .where(EventHandling.status == "pending", EventHandling.id > last_id,
                   (EventHandling.enqueued_at.is_(None)) | (EventHandling.enqueued_at < cutoff))
            .order_by(EventHandling.id).limit(batch_size)
        ).all()
        if not rows:
            db.session.rollback()
            break
        last_id = rows[-1][0].id
        statuses = job_statuses([agent_event_job_id(h.agent_key, h.event_id) for h, _ in rows])
        again: list[tuple[str, int]] = []
        for (handling, event), status in zip(rows, statuses):
            where = dict(legal_entity_id=event.legal_entity_id, billing_run_id=event.billing_run_id,
                         event_type=event.type, agent=handling.agent_key)
            if status in ALIVE and handling.enqueued_at is not None:
                result.waiting += 1
                continue
            if status in GIVEN_UP:
                handling.status = "failed"
                handling.error = (f"the agent's job {status} and was not retried again: see Settings > RQ dashboard, "
                                  "failed jobs; the invoice page shows the agent's outcome")
                record("workflow.step_failed", "event", event.id, watchdog, reason=handling.error, **where)
                result.failed += 1
                continue
            reason = ("handing the job to Redis had failed" if handling.enqueued_at is None
                      else "Redis lost the job (Redis restarted or was flushed)" if status is None
                      else f"the job ended ({status}) before the agent had acted")
            handling.enqueued_at, handling.enqueues = now, handling.enqueues + 1
            record("workflow.step_requeued", "event", event.id, watchdog, reason=reason,
                   job_id=agent_event_job_id(handling.agent_key, event.id), **where)
            again.append((handling.agent_key, event.id))
        db.session.commit()
        _hand_to_redis(again, retry_of)
        result.requeued += len(again)
    return result


@dataclass
class PendingHandling:
    event_id: int
    type: str
    agent: str
    age_s: int
    status: str
    enqueues: int
    error: str | None


def pending_handlings(now: datetime | None = None, limit: int | None = 1000) -> list[PendingHandling]:
    """Events some subscribed agent has not acted on past the grace period, oldest first: pending
    handlings, failed ones, and events the relay has not handed on at all (status `not relayed`)."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=handling_grace_seconds())
    rows = db.session.execute(
        select(EventHandling, Event).join(Event, Event.id == EventHandling.event_id)
        .where(((EventHandling.status == "pending") & (Event.created_at < cutoff)) | (EventHandling.status == "failed"))
        .order_by(Event.id, EventHandling.agent_key).limit(limit)
    ).all()
    found = [PendingHandling(event.id, event.type, handling.agent_key, int((now - event.created_at).total_seconds()),
                             handling.status, handling.enqueues, handling.error) for handling, event in rows]
    unrelayed = db.session.scalars(select(Event).where(Event.dispatched_at.is_(None), Event.created_at < cutoff)
                                   .order_by(Event.id).limit(limit))
    agents_of: dict[str, list[str]] = {}
    for event in unrelayed:
        if event.type not in agents_of:
            agents_of[event.type] = subscribers(event.type)
        for key in agents_of[event.type]:
            found.append(PendingHandling(event.id, event.type, key, int((now - event.created_at).total_seconds()),
                                         "not relayed", 0, None))
    found.sort(key=lambda p: (p.event_id, p.agent))
    return found[:limit] if limit else found


def pending_summary(now: datetime | None = None) -> tuple[int, int | None]:
    """For /healthz: how many (event, agent) pairs are not acted on past the grace period, and the oldest
    one's age in seconds."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=handling_grace_seconds())
    late = ((EventHandling.status == "pending") & (Event.created_at < cutoff)) | (EventHandling.status == "failed")
    count, oldest = db.session.execute(
        select(func.count(), func.min(Event.created_at)).select_from(EventHandling)
        .join(Event, Event.id == EventHandling.event_id).where(late)).one()
    unrelayed, oldest_unrelayed = db.session.execute(
        select(func.count(), func.min(Event.created_at)).where(Event.dispatched_at.is_(None),
                                                                Event.created_at < cutoff)).one()
    oldest = min((t for t in (oldest, oldest_unrelayed) if t is not None), default=None)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return count + unrelayed, int((now - oldest).total_seconds()) if oldest else None
