"""Billing runs: the one entrance for every trigger, the run job, its chunks, and their end.

    start_billing_run()  records a pending run and enqueues it (Run button, schedule, event, CLI)
    execute_run()        the run job: claims the run, lists the contracts, splits them into chunks
    process_chunk()      bills one chunk in one transaction (app/billing/chunks.py)
    finish_if_done()     the last chunk to commit completes the run, exactly once (app/billing/run_end.py)

Only the `billing_run` agent's configuration and the database decide what happens; Redis only
carries the jobs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.agents.events import emit
from app.agents.registry import BILLING_RUN
from app.audit import Actor, record
from app.billing.chunks import process_chunk
from app.billing.periods import period_label
from app.billing.run_end import fail_run, finish_if_done
from app.extensions import db
from app.models import AgentDefinition, BillingRun, BillingRunItem, Contract, LegalEntity
from app.models.runs import ACTIVE_RUN_STATUSES, RUN_TRIGGERS
from app.models.types import utcnow

log = logging.getLogger(__name__)


class RunRefused(RuntimeError):
    """A run cannot be started; the message says why and what to do."""


@dataclass
class StartResult:
    run: BillingRun
    started: bool
    message: str


# ------------------------------------------------------------------ configuration
def billing_agent() -> AgentDefinition:
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == BILLING_RUN.key))
    if agent is None:
        raise RunRefused("the Billing Run Agent is missing: run `flask db upgrade`")
    return agent


def agent_settings() -> dict[str, Any]:
    """The agent's configuration over the registry's defaults."""
    return {**BILLING_RUN.defaults(), **(billing_agent().configuration or {})}


def default_as_of(entity: LegalEntity, settings: dict[str, Any], now: datetime | None = None) -> date:
    """Today in the entity's time zone, moved by the agent's `as_of_offset_days`."""
    now = now or utcnow()
    today = now.astimezone(ZoneInfo(entity.timezone)).date()
    return today + timedelta(days=int(settings.get("as_of_offset_days", 0)))


# ------------------------------------------------------------------ the one entrance
def start_billing_run(
    entity: LegalEntity,
    as_of: date | None,
    trigger: str,
    actor: Actor,
    dry_run: bool = False,
    *,
    contract_ids: list[int] | None = None,
    trigger_ref: str | None = None,
    event_depth: int = 0,
    enqueue: bool = True,
) -> StartResult:
    """Record a billing run and enqueue it: the entrance for buttons, schedules, events and the CLI.

    While a (non-dry) run of the entity is pending or running, returns that run instead
    (`started` False). With `trigger_ref`, a trigger that already started a run returns that run.
    """
    if trigger not in RUN_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}: use one of {', '.join(RUN_TRIGGERS)}")
    agent = billing_agent()
    if not agent.enabled:
        raise RunRefused("the Billing Run Agent is disabled: enable it under Agents > Definitions")
    settings = agent_settings()
    as_of = as_of or default_as_of(entity, settings)
    sweep_stale_runs(entity.id)

    for _attempt in range(5):
        existing = _existing_for(entity, dry_run, trigger_ref)
        if existing is not None:
            return existing
        number = (db.session.scalar(
            select(func.max(BillingRun.number)).where(BillingRun.legal_entity_id == entity.id)
        ) or 0) + 1
        run = BillingRun(
            legal_entity_id=entity.id, number=number, as_of=as_of, period_label=period_label(as_of),
            status="pending", trigger=trigger, actor_type=actor.type, actor_user_id=actor.user_id,
            actor_label=actor.label, trigger_ref=trigger_ref, dry_run=dry_run, event_depth=event_depth,
            contract_ids=sorted(contract_ids) if contract_ids is not None else None,
        )
        db.session.add(run)
        try:
            db.session.flush()
        except IntegrityError:  # another request took the number, or started a run meanwhile
            db.session.rollback()
            continue
        record("billing_run.queued", "billing_run", run.id, actor, legal_entity_id=entity.id,
               billing_run_id=run.id, as_of=as_of.isoformat(), trigger=trigger, dry_run=dry_run,
               retry_of_contracts=len(contract_ids) if contract_ids is not None else None)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        break
    else:
        raise RunRefused(f"could not start a run for {entity.code}: too many concurrent requests, try again")

    kind = "Dry run" if dry_run else "Run"
    message = f"{kind} #{run.number} queued for {entity.code}, as of {as_of.isoformat()}."
    if enqueue:
        try:
            from app.agents.jobs import enqueue_billing_run

            run.rq_job_id = enqueue_billing_run(run.id)
            db.session.commit()
        except Exception as error:  # Redis down: say so on the run, lose nothing
            db.session.rollback()
            fail_run(run.id, f"could not queue the run, the job queue (Redis) is unreachable: {error}")
            db.session.refresh(run)
            message = f"{kind} #{run.number} could not be queued: the job queue (Redis) is unreachable."
    return StartResult(run, True, message)


def _existing_for(entity: LegalEntity, dry_run: bool, trigger_ref: str | None) -> StartResult | None:
    if trigger_ref is not None:
        run = db.session.scalar(select(BillingRun).where(
            BillingRun.legal_entity_id == entity.id, BillingRun.trigger_ref == trigger_ref))
        if run is not None:
            return StartResult(run, False, f"Run #{run.number} was already started by this trigger ({trigger_ref}).")
    if not dry_run:
        run = active_run(entity.id)
        if run is not None:
            return StartResult(run, False, f"Run #{run.number} is already {run.status} for {entity.code}; "
                                           "it was not started a second time.")
    return None


def active_run(entity_id: int) -> BillingRun | None:
    return db.session.scalar(select(BillingRun).where(
        BillingRun.legal_entity_id == entity_id, BillingRun.status.in_(ACTIVE_RUN_STATUSES),
        BillingRun.dry_run.is_(False)))


# ------------------------------------------------------------------ the run job
def execute_run(run_id: int, *, inline: bool = False) -> None:
    """Claim a pending run, list its contracts and bill them in chunks (fanned out unless inline)."""
    claimed = db.session.execute(
        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status == "pending")
        .values(status="running", started_at=utcnow(), heartbeat_at=utcnow())
    ).rowcount
    if not claimed:  # cancelled, or a duplicate job: nothing to do
        db.session.rollback()
        return
    run = db.session.get(BillingRun, run_id)
    entity = run.legal_entity
    record("billing_run.started", "billing_run", run.id, Actor.system("billing worker"),
           legal_entity_id=entity.id, billing_run_id=run.id)
    emit("billing_run.started", {"run_id": run.id, "number": run.number, "entity": entity.code},
         legal_entity_id=entity.id, billing_run_id=run.id, depth=run.event_depth)
    db.session.commit()
    try:
        settings = agent_settings()
        query = select(Contract.id).where(Contract.legal_entity_id == entity.id, Contract.status == "active")
        if run.contract_ids is not None:
            query = query.where(Contract.id.in_(run.contract_ids))
        ids = list(db.session.scalars(query.order_by(Contract.id)))
        run.contracts_total = len(ids)
        db.session.commit()
        size = int(settings["chunk_size"])
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        chunk_settings = {"auto_post": bool(settings["auto_post"]),
                          "payment_terms_days": int(settings["payment_terms_days"])}
        if not chunks:
            finish_if_done(run_id)
        elif inline or len(chunks) == 1:
            for chunk in chunks:
                process_chunk(run_id, chunk, chunk_settings, first_attempt=True)
        else:
            from app.agents.jobs import enqueue_billing_chunk

            for chunk in chunks:
                enqueue_billing_chunk(run_id, chunk, chunk_settings)
            record("billing_run.fanned_out", "billing_run", run_id, Actor.system("billing worker"),
                   legal_entity_id=entity.id, billing_run_id=run_id, chunks=len(chunks), chunk_size=size)
            db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.exception("billing run %s failed", run_id)
        fail_run(run_id, f"the run stopped: {error}")
        raise


def sweep_stale_runs(entity_id: int | None = None, now: datetime | None = None) -> int:
    """Fail runs that have been running without progress for longer than RUN_STALE_SECONDS."""
    now = now or utcnow()
    limit = timedelta(seconds=current_app.config["RUN_STALE_SECONDS"])
    query = select(BillingRun).where(BillingRun.status == "running",
                                     func.coalesce(BillingRun.heartbeat_at, BillingRun.started_at) < now - limit)
    if entity_id is not None:
        query = query.where(BillingRun.legal_entity_id == entity_id)
    stale = list(db.session.scalars(query))
    count = 0
    for run in stale:
        last = run.heartbeat_at or run.started_at
        minutes = int((now - last).total_seconds() // 60)
        count += fail_run(run.id, (
            f"no progress for {minutes} minute(s) since {last:%Y-%m-%d %H:%M} UTC: the worker running it "
            "probably stopped. Its finished chunks are kept; a new run bills whatever is still missing."
        ), Actor.system("stale-run sweep"))
    return count


def cancel_run(run: BillingRun, actor: Actor) -> bool:
    """Cancel a pending run (a running one cannot be cancelled)."""
    cancelled = db.session.execute(
        update(BillingRun).where(BillingRun.id == run.id, BillingRun.status == "pending")
        .values(status="cancelled", finished_at=utcnow())
    ).rowcount
    if not cancelled:
        db.session.rollback()
        return False
    record("billing_run.cancelled", "billing_run", run.id, actor, legal_entity_id=run.legal_entity_id,
           billing_run_id=run.id)
    db.session.commit()
    return True


def retry_failed(run: BillingRun, actor: Actor, trigger: str = "manual") -> StartResult:
    """Start a run for only the contracts that failed in `run` (a dry run's retry is a dry run too)."""
    failed = list(db.session.scalars(select(BillingRunItem.contract_id).where(
        BillingRunItem.billing_run_id == run.id, BillingRunItem.status == "failed")))
    if not failed:
        raise RunRefused(f"run #{run.number} has no failed contracts to retry")
    return start_billing_run(run.legal_entity, run.as_of, trigger, actor, run.dry_run, contract_ids=failed)
