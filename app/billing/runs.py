"""Billing runs: the one entrance for every trigger, the run job, its chunks, and their end.

    start_billing_run()  records a pending run and enqueues it (Run button, schedule, event, CLI)
    execute_run()        the run job: claims the run, lists the contracts, splits them into chunks
    process_chunk()      bills one chunk in one transaction; a failed chunk is redone contract by contract
    finish_if_done()     the last chunk to commit completes the run (exactly once)

Only the `billing_run` agent's configuration and the database decide what happens; Redis only
carries the jobs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.agents.events import emit
from app.agents.registry import BILLING_RUN
from app.audit import Actor, record
from app.billing.ledger import EntityInfo, billed_period_starts, lock_entity, write_invoices
from app.billing.money import LineInput, round_money
from app.billing.periods import period_label
from app.billing.planner import ContractPlan, ContractTerms, plan_contract
from app.extensions import db
from app.models import AgentDefinition, BillingRun, BillingRunItem, Contract, ContractLine, Invoice, LegalEntity
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
                process_chunk(run_id, chunk, chunk_settings)
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


# ------------------------------------------------------------------ chunks
def _entity_info(entity: LegalEntity) -> EntityInfo:
    return EntityInfo(entity.id, entity.code, entity.invoice_prefix)


def load_terms(entity: LegalEntity, contract_ids: list[int], default_terms: int) -> dict[int, ContractTerms]:
    """Snapshots of the contracts and their lines, read set-based."""
    lines: dict[int, list[LineInput]] = {cid: [] for cid in contract_ids}
    for row in db.session.execute(
        select(ContractLine.contract_id, ContractLine.description, ContractLine.quantity, ContractLine.unit_price,
               ContractLine.vat_rate)
        .where(ContractLine.contract_id.in_(contract_ids)).order_by(ContractLine.contract_id, ContractLine.position)
    ):
        lines[row.contract_id].append(LineInput(row.description, row.quantity, row.unit_price, row.vat_rate))
    terms = {}
    for row in db.session.execute(
        select(Contract.id, Contract.reference, Contract.customer_id, Contract.currency, Contract.frequency,
               Contract.start_date, Contract.end_date, Contract.payment_terms_days)
        .where(Contract.id.in_(contract_ids))
    ):
        days = row.payment_terms_days
        if days is None:
            days = entity.payment_terms_days if entity.payment_terms_days is not None else default_terms
        terms[row.id] = ContractTerms(row.id, row.reference, row.customer_id, row.currency, row.frequency,
                                      row.start_date, row.end_date, tuple(lines[row.id]), days)
    return terms


def process_chunk(run_id: int, contract_ids: list[int], settings: dict[str, Any]) -> None:
    """Bill one chunk of contracts: one transaction, redone contract by contract if it fails."""
    run = db.session.get(BillingRun, run_id)
    if run is None or run.status != "running":
        db.session.rollback()
        return
    entity = run.legal_entity
    done = set(db.session.scalars(select(BillingRunItem.contract_id).where(
        BillingRunItem.billing_run_id == run_id, BillingRunItem.contract_id.in_(contract_ids))))
    todo = [cid for cid in contract_ids if cid not in done]  # a retried chunk job skips what it did
    terms = load_terms(entity, todo, settings["payment_terms_days"])
    billed = billed_period_starts(todo)
    plans = [plan_contract(terms[cid], billed.get(cid, set()), run.as_of) for cid in todo if cid in terms]
    info, dry_run, depth = _entity_info(entity), run.dry_run, run.event_depth
    db.session.rollback()  # end the read transaction before taking the entity lock
    write = partial(_write_chunk, run_id, info, dry_run=dry_run, depth=depth)
    try:
        write(plans, post=settings["auto_post"])
    except DBAPIError as error:
        db.session.rollback()
        log.warning("run %s: chunk write failed (%s); redoing contract by contract", run_id, error.orig)
        for plan in plans:
            try:
                write([plan], post=settings["auto_post"])
            except DBAPIError as single:
                db.session.rollback()
                reason = f"the database refused the invoice: {_first_line(single.orig)}"
                write([ContractPlan(plan.contract_id, error=reason)], post=False)
    finish_if_done(run_id)


def _write_chunk(run_id: int, entity: EntityInfo, plans: list[ContractPlan], *, post: bool, dry_run: bool,
                 depth: int = 0) -> None:
    """Write the chunk's invoices, run items and progress in one transaction."""
    notes: dict[int, str] = {}
    # Under the entity lock, what others wrote meanwhile is visible: a duplicated chunk job finds its
    # contracts done, and a concurrent run's invoices are not billed again.
    lock_entity(entity.id)
    recorded = set(db.session.scalars(select(BillingRunItem.contract_id).where(
        BillingRunItem.billing_run_id == run_id, BillingRunItem.contract_id.in_([p.contract_id for p in plans]))))
    plans = [p for p in plans if p.contract_id not in recorded]
    if not dry_run and any(p.drafts for p in plans):
        fresh = billed_period_starts([p.contract_id for p in plans if p.drafts])
        checked = []
        for plan in plans:
            taken = fresh.get(plan.contract_id, set())
            if plan.drafts and taken:
                remaining = tuple(d for d in plan.drafts if d.period.start not in taken)
                if len(remaining) < len(plan.drafts):
                    notes[plan.contract_id] = (
                        f"{len(plan.drafts) - len(remaining)} period(s) already invoiced by another run: nothing to do")
                plan = ContractPlan(plan.contract_id, remaining, plan.error)
            checked.append(plan)
        plans = checked
    drafts = [d for p in plans for d in p.drafts]
    written = [] if dry_run else write_invoices(entity, drafts, post=post, billing_run_id=run_id, depth=depth)
    invoice_ids: dict[int, list[int]] = {}
    for invoice in written:
        invoice_ids.setdefault(invoice.contract_id, []).append(invoice.id)
    items = []
    for plan in plans:
        items.append({
            "billing_run_id": run_id, "contract_id": plan.contract_id, "status": plan.status,
            "periods_billed": len(plan.drafts), "invoice_ids": invoice_ids.get(plan.contract_id, []),
            "periods": [d.period.start.isoformat() for d in plan.drafts],
            "totals": {c: str(t) for c, t in plan.totals().items()},
            "reason": plan.error or notes.get(plan.contract_id),
        })
    if items:
        db.session.execute(insert(BillingRunItem), items)
    progressed = db.session.execute(
        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status == "running").values(
            contracts_processed=BillingRun.contracts_processed + len(plans),
            contracts_invoiced=BillingRun.contracts_invoiced + sum(1 for p in plans if p.drafts),
            contracts_failed=BillingRun.contracts_failed + sum(1 for p in plans if p.error),
            invoices_created=BillingRun.invoices_created + len(drafts),
            heartbeat_at=utcnow(),
        )
    ).rowcount
    if not progressed:  # the run was failed by a sweep meanwhile: keep nothing of this chunk
        db.session.rollback()
        return
    db.session.commit()


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ------------------------------------------------------------------ the end of a run
def finish_if_done(run_id: int) -> bool:
    """Complete the run once every contract is processed; exactly one caller does it."""
    finished = db.session.execute(
        update(BillingRun)
        .where(BillingRun.id == run_id, BillingRun.status == "running",
               BillingRun.contracts_processed >= BillingRun.contracts_total)
        .values(status=case((BillingRun.contracts_failed > 0, "completed_with_errors"), else_="completed"),
                finished_at=utcnow(), heartbeat_at=utcnow())
    ).rowcount
    if not finished:
        db.session.rollback()
        return False
    run = db.session.get(BillingRun, run_id)
    run.totals = run_totals(run)
    duration = (run.finished_at - run.started_at).total_seconds() if run.started_at else None
    record("billing_run.completed", "billing_run", run.id, Actor.system("billing worker"),
           legal_entity_id=run.legal_entity_id, billing_run_id=run.id, status=run.status,
           contracts=run.contracts_total, invoices=run.invoices_created, failed=run.contracts_failed,
           totals=run.totals, duration_s=duration)
    emit("billing_run.completed", {"run_id": run.id, "number": run.number, "status": run.status,
                                   "invoices": run.invoices_created, "totals": run.totals},
         legal_entity_id=run.legal_entity_id, billing_run_id=run.id, depth=run.event_depth)
    db.session.commit()
    _relay_soon()
    return True


def run_totals(run: BillingRun) -> dict[str, str]:
    """Currency → total of what the run invoiced (or, for a dry run, would have)."""
    totals: dict[str, Decimal] = {}
    if run.dry_run:
        for item_totals in db.session.scalars(select(BillingRunItem.totals).where(BillingRunItem.billing_run_id == run.id)):
            for currency, amount in (item_totals or {}).items():
                totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    else:
        for currency, amount in db.session.execute(
            select(Invoice.currency, func.sum(Invoice.total_amount)).where(Invoice.billing_run_id == run.id)
            .group_by(Invoice.currency)
        ):
            totals[currency] = Decimal(amount)
    # Amounts are already whole minor units; quantizing drops the storage scale: 117.06, not 117.0600.
    return {currency: str(round_money(amount, currency)) for currency, amount in sorted(totals.items())}


def fail_run(run_id: int, reason: str, actor: Actor | None = None) -> bool:
    """Mark a pending or running run failed with a reason a person can act on."""
    failed = db.session.execute(
        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status.in_(ACTIVE_RUN_STATUSES))
        .values(status="failed", error=reason, finished_at=utcnow())
    ).rowcount
    if not failed:
        db.session.rollback()
        return False
    run = db.session.get(BillingRun, run_id)
    record("billing_run.failed", "billing_run", run.id, actor or Actor.system("billing worker"),
           legal_entity_id=run.legal_entity_id, billing_run_id=run.id, reason=reason)
    emit("billing_run.failed", {"run_id": run.id, "number": run.number, "reason": reason},
         legal_entity_id=run.legal_entity_id, billing_run_id=run.id, depth=run.event_depth)
    db.session.commit()
    return True


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


def _relay_soon() -> None:
    """Ask a worker to dispatch the outbox now; if Redis is down the periodic relay catches up."""
    try:
        from app.agents.jobs import enqueue_relay

        enqueue_relay()
    except Exception as error:  # noqa: BLE001 - nothing is lost, the events wait in the outbox
        log.warning("could not enqueue the outbox relay: %s", error)
