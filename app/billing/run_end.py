"""The end of a billing run: completed (exactly once, by the last chunk) or failed, with its totals."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import case, func, select, update

from app.audit import Actor, record
from app.billing.money import round_money
from app.extensions import db
from app.models import BillingRun, BillingRunItem, Invoice
from app.models.runs import ACTIVE_RUN_STATUSES
from app.models.types import utcnow
from app.outbox import emit
from app.queues import relay_soon


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
    relay_soon()
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
    """Mark a pending or running run failed with a reason a person can act on.

    The invoices its chunks committed stay: their total is recorded as a completed run's is (a chunk
    that commits later finds the run failed and keeps nothing)."""
    failed = db.session.execute(
        update(BillingRun).where(BillingRun.id == run_id, BillingRun.status.in_(ACTIVE_RUN_STATUSES))
        .values(status="failed", error=reason, finished_at=utcnow())
    ).rowcount
    if not failed:
        db.session.rollback()
        return False
    run = db.session.get(BillingRun, run_id)
    run.totals = run_totals(run)
    record("billing_run.failed", "billing_run", run.id, actor or Actor.system("billing worker"),
           legal_entity_id=run.legal_entity_id, billing_run_id=run.id, reason=reason,
           invoices=run.invoices_created, totals=run.totals)
    emit("billing_run.failed", {"run_id": run.id, "number": run.number, "reason": reason},
         legal_entity_id=run.legal_entity_id, billing_run_id=run.id, depth=run.event_depth)
    db.session.commit()
    return True
