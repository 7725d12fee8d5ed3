"""Billing runs: the one entrance for every trigger, the run job, its chunks, and their end.

    start_billing_run()  records a pending run and enqueues it (Run button, schedule, event, CLI)
    execute_run()        the run job: claims the run, lists the contracts, splits them into chunks
    process_chunk()      bills one chunk in one transaction (app/billing/chunks.py)
    finish_if_done()     the last chunk to commit completes the run, exactly once (app/billing/run_end.py)
    supervise_runs()     re-queues what dead workers and Redis lost, fails runs whose work is gone
                         (app/billing/supervision.py)

Only the `billing_run` agent's configuration and the database decide what happens; Redis only
carries the jobs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.agents.settings import agent_row, configuration_of
from app.audit import Actor, record
from app.billing.chunks import process_chunk
from app.billing.periods import period_label
from app.billing.run_end import fail_run, finish_if_done
from app.errors import AsOfRefused, RunRefused
from app.extensions import db
from app.models import AgentDefinition, BillingRun, BillingRunChunk, BillingRunItem, Contract, LegalEntity
from app.models.runs import ACTIVE_RUN_STATUSES, RUN_TRIGGERS
from app.models.types import utcnow
from app.outbox import emit
from app.queues import REDIS_DOWN, chunk_job_id, enqueue_billing_chunk, enqueue_billing_run, get_redis

log = logging.getLogger(__name__)


@dataclass
class StartResult:
    run: BillingRun
    started: bool
    message: str


# ------------------------------------------------------------------ configuration
def billing_agent() -> AgentDefinition:
    agent = agent_row("billing_run")
    if agent is None:
        raise RunRefused("the Billing Run Agent is missing: run `flask db upgrade`")
    return agent


def agent_settings() -> dict[str, Any]:
    """The agent's configuration over the registry's defaults."""
    return configuration_of(billing_agent())


def enabled_agent_settings() -> dict[str, Any]:
    """The agent's settings; RunRefused when it is disabled."""
    agent = billing_agent()
    if not agent.enabled:
        raise RunRefused("the Billing Run Agent is disabled: enable it under Agents > Definitions")
    return configuration_of(agent)


def default_as_of(entity: LegalEntity, settings: dict[str, Any], now: datetime | None = None) -> date:
    """Today in the entity's time zone, moved by the agent's `as_of_offset_days`."""
    return entity.today(now) + timedelta(days=int(settings.get("as_of_offset_days", 0)))


# ------------------------------------------------------------------ billing ahead of time
@dataclass(frozen=True)
class AsOfCheck:
    """Where an as-of date stands against today in the legal entity's time zone and the cap."""
    as_of: date
    today: date
    zone: str
    max_days_ahead: int

    @property
    def days_ahead(self) -> int:
        return (self.as_of - self.today).days

    @property
    def ahead(self) -> bool:
        return self.days_ahead > 0

    @property
    def latest(self) -> date:
        return self.today + timedelta(days=self.max_days_ahead)

    @property
    def beyond_cap(self) -> bool:
        return self.days_ahead > self.max_days_ahead

    def in_words(self) -> str:
        """"2027-12-31 is 389 days after today (2026-12-07 in Europe/Berlin)"."""
        days = self.days_ahead
        return (f"as-of {self.as_of.isoformat()} is {days} day{'' if days == 1 else 's'} after today "
                f"({self.today.isoformat()} in {self.zone})")


def max_days_ahead() -> int:
    return int(current_app.config.get("RUN_AS_OF_MAX_DAYS_AHEAD", 31))


def as_of_check(entity: LegalEntity, as_of: date, now: datetime | None = None) -> AsOfCheck:
    return AsOfCheck(as_of, entity.today(now), entity.timezone, max_days_ahead())


def refuse_as_of(check: AsOfCheck, *, explicit: bool, ahead_of_time: bool) -> None:
    """A real run bills at most RUN_AS_OF_MAX_DAYS_AHEAD days ahead; an as-of date a person gave that is
    after today needs them to say so (`ahead_of_time`). The agent's as-of offset is such a statement."""
    if check.beyond_cap:
        raise AsOfRefused(
            f"{check.in_words()}; a billing run bills at most {check.max_days_ahead} days ahead "
            f"(RUN_AS_OF_MAX_DAYS_AHEAD): choose an as-of date up to {check.latest.isoformat()}, "
            "or make a dry run to see what later dates would bill")
    if check.ahead and explicit and not ahead_of_time:
        raise AsOfRefused(f"{check.in_words()}: billing ahead of time must be asked for explicitly",
                          needs_consent=True)


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
    ahead_of_time: bool = False,
    confirmation: dict[str, Any] | None = None,
) -> StartResult:
    """Record a billing run and enqueue it: the entrance for buttons, schedules, events and the CLI.

    While a (non-dry) run of the entity is pending or running, returns that run instead
    (`started` False). With `trigger_ref`, a trigger that already started a run returns that run.
    A real run's as-of date is at most RUN_AS_OF_MAX_DAYS_AHEAD days after today in the entity's time
    zone, and a given one after today needs `ahead_of_time` (AsOfRefused). `confirmation`: what the
    preview the person confirmed said, recorded in the run's audit with them.
    """
    if trigger not in RUN_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}: use one of {', '.join(RUN_TRIGGERS)}")
    settings = enabled_agent_settings()
    explicit = as_of is not None
    as_of = as_of or default_as_of(entity, settings)
    if not dry_run:
        refuse_as_of(as_of_check(entity, as_of), explicit=explicit, ahead_of_time=ahead_of_time)
    _look_after_runs_of(entity.id)

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
        if confirmation is not None:
            record("billing_run.confirmed", "billing_run", run.id, actor, legal_entity_id=entity.id,
                   billing_run_id=run.id, **confirmation)
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


def _look_after_runs_of(entity_id: int) -> None:
    """Before a new run is refused because one is active: is that one's work still alive?"""
    from app.billing.supervision import supervise_runs

    try:
        supervise_runs(entity_id)
    except REDIS_DOWN as error:  # cannot tell; the scheduler looks again once Redis is back
        db.session.rollback()
        log.warning("could not look after the runs of entity %s: Redis is unreachable (%s)", entity_id, error)


# ------------------------------------------------------------------ the run job
def execute_run(run_id: int, *, inline: bool = False) -> None:
    """Claim the run, list its contracts, record them as chunks and bill those (by chunk jobs, or here).

    The chunks are recorded (billing_run_chunks) before their jobs are enqueued, so the supervisor
    can put back a chunk job that a dead worker or Redis lost. A run job re-queued because it was
    lost before the chunks were recorded resumes the run it had claimed; with chunks recorded, a
    run job (e.g. a duplicate) has nothing to do.
    """
    previous = db.session.scalar(select(BillingRun.status).where(BillingRun.id == run_id))
    has_chunks = select(BillingRunChunk.id).where(BillingRunChunk.billing_run_id == BillingRun.id).exists()
    now = utcnow()
    claimed = db.session.execute(
        update(BillingRun)
        .where(BillingRun.id == run_id,
               or_(BillingRun.status == "pending", (BillingRun.status == "running") & ~has_chunks))
        .values(status="running", started_at=func.coalesce(BillingRun.started_at, now), heartbeat_at=now)
    ).rowcount
    if not claimed:  # cancelled, failed, or already split into chunks: nothing to do
        db.session.rollback()
        return
    run = db.session.get(BillingRun, run_id)
    entity = run.legal_entity
    if previous == "pending":
        record("billing_run.started", "billing_run", run.id, Actor.system("billing worker"),
               legal_entity_id=entity.id, billing_run_id=run.id)
        emit("billing_run.started", {"run_id": run.id, "number": run.number, "entity": entity.code},
             legal_entity_id=entity.id, billing_run_id=run.id, depth=run.event_depth)
    db.session.commit()
    try:
        try:
            chunks, chunk_settings = _record_chunks(run, inline=inline)
        except IntegrityError:  # a duplicate of this job recorded them first
            db.session.rollback()
            return
        if not chunks:
            finish_if_done(run_id)
        elif inline:
            for contract_ids in chunks:
                process_chunk(run_id, contract_ids, chunk_settings, first_attempt=True)
        else:
            _enqueue_chunks(run_id, chunks, chunk_settings)
    except Exception as error:
        db.session.rollback()
        log.exception("billing run %s failed", run_id)
        fail_run(run_id, f"the run stopped: {error}")
        raise


def _record_chunks(run: BillingRun, *, inline: bool) -> tuple[list[list[int]], dict[str, Any]]:
    """List the run's contracts, split them into chunks of the agent's chunk_size and record those:
    the chunks' contract ids and the settings they are billed with."""
    settings = agent_settings()
    ids = billable_contract_ids(run.legal_entity_id, run.contract_ids)
    size = int(settings["chunk_size"])
    chunk_settings = {"auto_post": bool(settings["auto_post"]), "payment_terms_days": int(settings["payment_terms_days"])}
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    db.session.add_all(BillingRunChunk(billing_run_id=run.id, first_contract_id=part[0], last_contract_id=part[-1],
                                       size=len(part), contract_ids=part, settings=chunk_settings, requeues=0,
                                       job_id=None if inline else chunk_job_id(run.id, part[0])) for part in chunks)
    run.contracts_total = len(ids)
    if chunks and not inline:
        record("billing_run.fanned_out", "billing_run", run.id, Actor.system("billing worker"),
               legal_entity_id=run.legal_entity_id, billing_run_id=run.id, chunks=len(chunks), chunk_size=size)
    db.session.commit()
    return chunks, chunk_settings


# Contract ids are read this many rows at a time (a server-side cursor on PostgreSQL): the run job then holds the
# ids, not also a result row per contract. Listing a million contracts at once peaked at +250 MB, in fetches of
# 100,000 at +75 MB and as fast (20,000: +50 MB, but 2-3 s slower); bench/billing_run.py --contracts 1000000.
IDS_PER_FETCH = 100_000


def billable_contract_ids(entity_id: int, only: list[int] | None = None) -> list[int]:
    """The contracts a run of the entity looks at (its active ones, of `only` if given), in id order."""
    query = select(Contract.id).where(Contract.legal_entity_id == entity_id, Contract.status == "active")
    if only is not None:
        query = query.where(Contract.id.in_(only))
    return list(db.session.scalars(query.order_by(Contract.id).execution_options(yield_per=IDS_PER_FETCH)))


def _enqueue_chunks(run_id: int, chunks: list[list[int]], settings: dict[str, Any]) -> None:
    """One chunk job per chunk, sent to Redis at once. If Redis fails here, the chunks are recorded:
    the supervisor enqueues their jobs once Redis answers."""
    try:
        with get_redis().pipeline() as pipe:
            for contract_ids in chunks:
                enqueue_billing_chunk(run_id, contract_ids, settings, pipeline=pipe)
            pipe.execute()
    except REDIS_DOWN as error:
        log.warning("run %s: its chunk jobs could not be enqueued (%s); the supervisor will", run_id, error)


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


def failed_contract_ids(run: BillingRun) -> list[int]:
    return list(db.session.scalars(select(BillingRunItem.contract_id).where(
        BillingRunItem.billing_run_id == run.id, BillingRunItem.status == "failed").order_by(BillingRunItem.contract_id)))


def retry_failed(run: BillingRun, actor: Actor, trigger: str = "manual", *,
                 confirmation: dict[str, Any] | None = None) -> StartResult:
    """Start a run for only the contracts that failed in `run` (a dry run's retry is a dry run too).
    `confirmation`: what the retry's preview said, for the new run's audit."""
    failed = failed_contract_ids(run)
    if not failed:
        raise RunRefused(f"run #{run.number} has no failed contracts to retry")
    # The original run's as-of date was accepted (and, if ahead, asked for) when it started; the cap still holds.
    return start_billing_run(run.legal_entity, run.as_of, trigger, actor, run.dry_run, contract_ids=failed,
                             ahead_of_time=True, confirmation=confirmation)
