"""Schedules in the database: create, change, enable, delete (all audited), and what firing does."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.transactions import transactional
from app.agents.registry import spec_of
from app.agents.runs import run_inline
from app.agents.service import get_agent, list_agents, visible_to
from app.audit import Actor, record
from app.errors import AgentRunRefused, ScheduleError
from app.extensions import db
from app.models import AgentDefinition, LegalEntity, ScheduledJob, ScheduleFire
from app.models.types import utcnow
from app.records.validation import FieldError, column_length, one_line
from app.schedules.cron import Preset, describe, next_fires, preset_to_cron, slots_between

log = logging.getLogger(__name__)

NAME_MAX = column_length(ScheduledJob.name)
CRON_MAX = column_length(ScheduledJob.cron)


@dataclass(frozen=True)
class ScheduleInput:
    agent_key: str
    name: str
    preset: Preset


def is_schedulable(agent: AgentDefinition) -> bool:
    """A schedule can trigger the agents with runs of their own that listen to `schedule.triggered`."""
    spec = spec_of(agent)
    return spec is not None and spec.run is not None and "schedule.triggered" in (agent.trigger_events or [])


def schedulable_agents(entity_id: int | None) -> list[AgentDefinition]:
    """The agents a schedule of legal entity `entity_id` can trigger (its own custom agents among them)."""
    return [a for a in list_agents(entity_id) if is_schedulable(a)]


def _agent(key: str, entity_id: int) -> AgentDefinition:
    agent = get_agent(key)
    if agent is None or not visible_to(agent, entity_id):
        raise ScheduleError(f"unknown agent {key!r} (see `flask agents list`)")
    if not is_schedulable(agent):
        raise ScheduleError(f"the {agent.name} cannot be scheduled (it has no schedule.triggered trigger)")
    return agent


def check_name(name: str) -> str:
    """The schedule's name as given, or ScheduleError: one line of text, at most NAME_MAX characters."""
    try:
        one_line(name, "the name")
    except FieldError as error:
        raise ScheduleError(str(error)) from None
    if len(name) > NAME_MAX:
        raise ScheduleError(f"at most {NAME_MAX} characters (this has {len(name)})")
    return name


def _name(name: str, fallback: str) -> str:
    return check_name(name.strip() or fallback)


def schedule_cron(preset: Preset) -> tuple[str, bool]:
    """The preset's cron expression (and whether it fires on the first business day only), or
    ScheduleError, also when it is too long to store."""
    cron, first_business_day = preset_to_cron(preset)
    if len(cron) > CRON_MAX:
        raise ScheduleError(f"the cron expression is {len(cron)} characters long; at most {CRON_MAX} fit "
                            "(use ranges such as 0-30 rather than listing every value)")
    return cron, first_business_day


def _params(preset: Preset) -> dict:
    return {"time": preset.time, "weekdays": list(preset.weekdays), "day_of_month": preset.day_of_month,
            "cron": preset.cron}


def preset_of(schedule: ScheduledJob) -> Preset:
    p = schedule.preset_params or {}
    return Preset(schedule.preset, p.get("time", "06:00"), tuple(p.get("weekdays", ())), p.get("day_of_month", 1),
                  p.get("cron", schedule.cron))


@transactional
def create_schedule(entity: LegalEntity, data: ScheduleInput, actor: Actor) -> ScheduledJob:
    agent = _agent(data.agent_key, entity.id)
    cron, first_business_day = schedule_cron(data.preset)
    name = _name(data.name, describe(cron, entity.timezone, first_business_day))
    schedule = ScheduledJob(agent_id=agent.id, legal_entity_id=entity.id, name=name, cron=cron,
                            preset=data.preset.kind, preset_params=_params(data.preset),
                            first_business_day=first_business_day, enabled=True, created_by_id=actor.user_id)
    db.session.add(schedule)
    db.session.flush()
    record("schedule.created", "schedule", schedule.id, actor, legal_entity_id=entity.id, name=name, cron=cron,
           agent=agent.key, when=describe(cron, entity.timezone, first_business_day))
    return schedule


@transactional
def update_schedule(schedule: ScheduledJob, data: ScheduleInput, actor: Actor) -> dict:
    cron, first_business_day = schedule_cron(data.preset)
    new = {"name": _name(data.name, describe(cron, schedule.legal_entity.timezone, first_business_day)),
           "cron": cron, "preset": data.preset.kind, "preset_params": _params(data.preset),
           "first_business_day": first_business_day}
    changes = {k: {"old": getattr(schedule, k), "new": v} for k, v in new.items() if getattr(schedule, k) != v}
    for key, change in changes.items():
        setattr(schedule, key, change["new"])
    if changes:
        record("schedule.updated", "schedule", schedule.id, actor, legal_entity_id=schedule.legal_entity_id,
               changes={k: c for k, c in changes.items() if k != "preset_params"})
    return changes


@transactional
def set_schedule_enabled(schedule: ScheduledJob, enabled: bool, actor: Actor) -> bool:
    if schedule.enabled == enabled:
        return False
    schedule.enabled = enabled
    record("schedule.enabled" if enabled else "schedule.disabled", "schedule", schedule.id, actor,
           legal_entity_id=schedule.legal_entity_id, name=schedule.name)
    return True


@transactional
def delete_schedule(schedule: ScheduledJob, actor: Actor) -> None:
    record("schedule.deleted", "schedule", schedule.id, actor, legal_entity_id=schedule.legal_entity_id,
           name=schedule.name, cron=schedule.cron)
    db.session.delete(schedule)


def list_schedules(entity: LegalEntity | None = None) -> list[ScheduledJob]:
    query = select(ScheduledJob).order_by(ScheduledJob.id)
    if entity is not None:
        query = query.where(ScheduledJob.legal_entity_id == entity.id)
    return list(db.session.scalars(query))


# ------------------------------------------------------------------ times
def upcoming(schedule: ScheduledJob, count: int = 5, after: datetime | None = None) -> list[datetime]:
    return next_fires(schedule.cron, schedule.legal_entity.timezone, after or utcnow(), count,
                      schedule.first_business_day)


def when_in_words(schedule: ScheduledJob) -> str:
    return describe(schedule.cron, schedule.legal_entity.timezone, schedule.first_business_day)


def next_fire_for_entity(entity: LegalEntity) -> datetime | None:
    fires = [f for s in list_schedules(entity) if s.enabled for f in upcoming(s, 1)]
    return min(fires) if fires else None


def last_fire(schedule: ScheduledJob) -> ScheduleFire | None:
    return db.session.scalar(select(ScheduleFire).where(ScheduleFire.scheduled_job_id == schedule.id)
                             .order_by(ScheduleFire.slot.desc()).limit(1))


def missed_slots(schedule: ScheduledJob, now: datetime | None = None, limit: int = 20) -> list[datetime]:
    """Slots since the schedule was created (or last changed) that never fired, e.g. while the scheduler was down.

    The slot due right now is not missed yet: a fire gets a grace of two minutes.
    """
    now = now or utcnow()
    since = max(schedule.created_at, schedule.updated_at)
    until = now - timedelta(minutes=2)
    if not schedule.enabled or until <= since:
        return []
    fired = set(db.session.scalars(select(ScheduleFire.slot).where(
        ScheduleFire.scheduled_job_id == schedule.id, ScheduleFire.slot > since)))
    expected = slots_between(schedule.cron, schedule.legal_entity.timezone, since, until,
                             schedule.first_business_day, limit=500)
    return [slot for slot in expected if slot not in fired][-limit:]


# ------------------------------------------------------------------ firing
@dataclass
class FireResult:
    fired: bool
    message: str
    billing_run_id: int | None = None
    agent_run_id: int | None = None


def fire_schedule(schedule_id: int, slot: datetime) -> FireResult:
    """Fire one slot: run the agent for the schedule's legal entity (the one path of every agent run,
    app/agents/runs.py). A slot fires at most once."""
    schedule = db.session.get(ScheduledJob, schedule_id)
    if schedule is None:
        return FireResult(False, f"schedule #{schedule_id} no longer exists")
    actor = Actor.for_schedule(schedule)
    if not schedule.enabled:
        record("schedule.fire_skipped", "schedule", schedule.id, actor, legal_entity_id=schedule.legal_entity_id,
               slot=slot.isoformat(), reason="the schedule is disabled")
        db.session.commit()
        return FireResult(False, "the schedule is disabled")
    fire = ScheduleFire(scheduled_job_id=schedule.id, slot=slot, fired_at=utcnow(), outcome="firing")
    db.session.add(fire)
    try:
        db.session.commit()
    except IntegrityError:  # the same slot fired again (rq-scheduler can do that): a no-op
        db.session.rollback()
        record("schedule.duplicate_fire_ignored", "schedule", schedule.id, actor,
               legal_entity_id=schedule.legal_entity_id, slot=slot.isoformat())
        db.session.commit()
        return FireResult(False, f"slot {slot.isoformat()} already fired: ignored")
    entity = schedule.legal_entity
    try:
        run = run_inline(schedule.agent, entity, "schedule", actor, slot=slot,
                         trigger_ref=f"schedule:{schedule.id}:{slot.isoformat()}")
    except AgentRunRefused as refused:
        fire.outcome = f"refused: {refused}"
    else:
        fire = db.session.get(ScheduleFire, fire.id)
        schedule = db.session.get(ScheduledJob, schedule_id)
        fire.agent_run_id, fire.billing_run_id = run.id, run.billing_run_id
        fire.outcome = run.summary if run.status == "succeeded" or run.summary.startswith("refused") else \
            f"{run.status}: {run.summary}"
        if run.billing_run_id is not None:
            schedule.last_run_id = run.billing_run_id
    schedule.last_fire_at = fire.fired_at
    record("schedule.fired", "schedule", schedule.id, actor, legal_entity_id=entity.id,
           billing_run_id=fire.billing_run_id, slot=slot.isoformat(), outcome=fire.outcome)
    db.session.commit()
    return FireResult(True, fire.outcome, fire.billing_run_id, fire.agent_run_id)


def fires_count(schedule: ScheduledJob) -> int:
    return db.session.scalar(select(func.count()).select_from(ScheduleFire)
                             .where(ScheduleFire.scheduled_job_id == schedule.id)) or 0
