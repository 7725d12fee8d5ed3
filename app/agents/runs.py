"""Runs of any agent for a legal entity: the Run button, a schedule's fire, `flask agents run`, a test.

`request_run` records the run (queued) and enqueues it on the agent's queue after commit; `execute_agent_run` (the
job, or a schedule's fire inline) calls the agent's `run` with its settings and records what it did. Every run
is an `agent_runs` row and an audit entry; a billing agent's run also points at the billing run it started.
"""
from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import func, select

from app.agents.base import RunOutcome, RunRequest
from app.agents.registry import spec_of
from app.agents.settings import configuration_of
from app.audit import Actor, record
from app.extensions import db
from app.models import AgentDefinition, AgentRun, LegalEntity
from app.models.types import utcnow
from app.queues import AGENT_RUN_JOB, REDIS_DOWN, agent_run_job_id, launch_task

log = logging.getLogger(__name__)

FINAL = ("succeeded", "failed")


class AgentRunRefused(RuntimeError):
    """The agent cannot run for this legal entity now (no runs of its own, disabled, another entity's)."""


def check_runnable(agent: AgentDefinition, entity: LegalEntity, trigger: str) -> None:
    spec = spec_of(agent)
    if spec is None or spec.run is None:
        raise AgentRunRefused(f"the {agent.name} has no runs of its own: it acts on events "
                              f"({', '.join(agent.trigger_events or [])})")
    if agent.custom and agent.legal_entity_id != entity.id:
        raise AgentRunRefused(f"the {agent.name} works for another legal entity")
    if not agent.enabled and trigger != "test":
        raise AgentRunRefused(f"the {agent.name} is disabled: enable it under Agents > Definitions (a test run "
                              "works while it is disabled)")


def _new_run(agent: AgentDefinition, entity: LegalEntity, trigger: str, actor: Actor,
             as_of: date | None) -> AgentRun:
    run = AgentRun(agent_id=agent.id, legal_entity_id=entity.id, trigger=trigger, status="queued",
                   requested_by=actor.label, requested_by_type=actor.type, requested_by_id=actor.user_id, as_of=as_of)
    db.session.add(run)
    db.session.flush()
    record("agent.run_requested", "agent", agent.id, actor, legal_entity_id=entity.id, agent=agent.key,
           agent_run_id=run.id, trigger=trigger, as_of=as_of.isoformat() if as_of else None)
    return run


def request_run(agent: AgentDefinition, entity: LegalEntity, trigger: str, actor: Actor,
                as_of: date | None = None) -> AgentRun:
    """Record a run and enqueue it (after commit) on the agent's queue. AgentRunRefused changes nothing."""
    check_runnable(agent, entity, trigger)
    spec = spec_of(agent)
    run = _new_run(agent, entity, trigger, actor, as_of)
    db.session.commit()
    try:
        run.job_id = launch_task(AGENT_RUN_JOB, run.id, queue=spec.queue, job_id=agent_run_job_id(run.id),
                                 timeout=spec.job_timeout, description=f"agent run {run.id}")
    except REDIS_DOWN:
        _finish(run, RunOutcome("not started: the job queue (Redis) is not reachable; try again", ok=False))
    db.session.commit()
    return run


def run_inline(agent: AgentDefinition, entity: LegalEntity, trigger: str, actor: Actor, *,
               as_of: date | None = None, slot: datetime | None = None, trigger_ref: str = "") -> AgentRun:
    """Record and run at once in this process (a schedule's fire job, `flask agents run --inline`)."""
    check_runnable(agent, entity, trigger)
    run = _new_run(agent, entity, trigger, actor, as_of)
    db.session.commit()
    return execute_agent_run(run.id, slot=slot, trigger_ref=trigger_ref, reraise=False)


def execute_agent_run(run_id: int, *, slot: datetime | None = None, trigger_ref: str = "",
                      reraise: bool = True) -> AgentRun:
    """Run a recorded agent run (the job). A run already finished is not run again (a job seen twice).
    An error is recorded on the run as failed, then raised again (the job fails) unless `reraise` is False."""
    run = db.session.get(AgentRun, run_id)
    if run is None or run.status in FINAL:
        return run
    agent, entity = run.agent, run.legal_entity
    spec = spec_of(agent)
    run.status, run.started_at = "running", utcnow()
    db.session.commit()
    actor = Actor(run.requested_by_type, run.requested_by, run.requested_by_id)
    request = RunRequest(agent=agent, entity=entity, actor=actor, trigger=run.trigger,
                         configuration=configuration_of(agent), agent_run_id=run.id, as_of=run.as_of, slot=slot,
                         trigger_ref=trigger_ref or f"agent_run:{run.id}")
    try:
        outcome = spec.run(request) if spec is not None and spec.run is not None else RunOutcome(
            "its module is not installed", ok=False)
    except Exception as error:  # recorded on the run; the job itself fails with ids only
        db.session.rollback()
        log.exception("agent run %s of %s failed", run_id, agent.key)
        run = db.session.get(AgentRun, run_id)
        _finish(run, RunOutcome(f"failed: {type(error).__name__}", ok=False), error=str(error)[:2000])
        db.session.commit()
        if reraise:
            raise
        return run
    run = db.session.get(AgentRun, run_id)
    _finish(run, outcome)
    db.session.commit()
    return run


def _finish(run: AgentRun, outcome: RunOutcome, error: str | None = None) -> None:
    run.status = "succeeded" if outcome.ok else "failed"
    run.summary, run.details, run.error = outcome.summary, outcome.details, error
    run.billing_run_id = outcome.billing_run_id or run.billing_run_id
    run.finished_at = utcnow()
    record("agent.run_finished", "agent", run.agent_id, Actor.system(run.agent.name), legal_entity_id=run.legal_entity_id,
           agent=run.agent.key, agent_run_id=run.id, status=run.status, summary=run.summary,
           billing_run_id=run.billing_run_id)


# ------------------------------------------------------------------ reading
def runs_of(agent: AgentDefinition, entity_id: int | None, limit: int = 25) -> tuple[list[AgentRun], int]:
    """The agent's latest runs for the entity (newest first) and how many there are."""
    query = select(AgentRun).where(AgentRun.agent_id == agent.id, AgentRun.legal_entity_id == entity_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return list(db.session.scalars(query.order_by(AgentRun.id.desc()).limit(limit))), total


def last_runs(entity_id: int | None) -> dict[int, AgentRun]:
    """Agent id → its latest run for the entity (the catalogue's Last run column)."""
    latest = (select(func.max(AgentRun.id)).where(AgentRun.legal_entity_id == entity_id)
              .group_by(AgentRun.agent_id))
    return {run.agent_id: run for run in db.session.scalars(select(AgentRun).where(AgentRun.id.in_(latest)))}
