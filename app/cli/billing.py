import time

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.billing.supervision import supervise_runs
from app.cli.common import ID, echo_json, entity_or_fail, fail
from app.errors import AsOfRefused, FieldError, RunRefused
from app.extensions import db
from app.models import BillingRun, BillingRunItem, Contract
from app.models.runs import ACTIVE_RUN_STATUSES
from app.records.validation import parse_optional_date

group = AppGroup("billing", help="The Billing Run Agent.")


def run_summary(run: BillingRun) -> dict:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "run_number": run.number, "status": run.status, "as_of": run.as_of.isoformat(), "period": run.period_label,
        "trigger": run.trigger, "actor": run.actor_label, "contracts": run.contracts_total,
        "processed": run.contracts_processed, "invoiced": run.contracts_invoiced, "invoices": run.invoices_created,
        "failed": run.contracts_failed, "totals": run.totals or {}, "duration_s": duration, "dry_run": run.dry_run,
        "error": run.error,
    }


def echo_summary(summary: dict) -> None:
    kind = "Dry run" if summary["dry_run"] else "Run"
    totals = ", ".join(f"{c} {a}" for c, a in summary["totals"].items()) or "nothing"
    click.echo(f"{kind} #{summary['run_number']} as of {summary['as_of']}: {summary['status']}; "
               f"{summary['contracts']} contract(s), {summary['invoices']} invoice(s), "
               f"{summary['failed']} failed; total {totals}"
               + (f"; {summary['duration_s']} s" if summary["duration_s"] is not None else ""))
    if summary.get("error"):
        click.echo(f"  {summary['error']}")


@group.command("run")
@click.option("--entity", "code", required=True, help="Legal entity code, e.g. DE01.")
@click.option("--as-of", "as_of", help="YYYY-MM-DD; default: today in the entity's time zone (+ the agent's offset).")
@click.option("--dry-run", is_flag=True, help="Compute the result table and totals; write no invoices.")
@click.option("--ahead-of-time", "ahead_of_time", is_flag=True,
              help="Allow an --as-of date after today in the entity's time zone (at most RUN_AS_OF_MAX_DAYS_AHEAD "
                   "days ahead): periods starting by then are invoiced now.")
@click.option("--inline", is_flag=True, help="Run in this process, without a worker.")
@click.option("--wait", is_flag=True, help="Wait until the queued run ends.")
@click.option("--timeout", default=3600, show_default=True, help="Seconds --wait waits at most.")
@click.option("--json", "as_json", is_flag=True)
def run(code, as_of, dry_run, ahead_of_time, inline, wait, timeout, as_json):
    """Start a billing run for a legal entity."""
    entity = entity_or_fail(code)
    try:
        as_of_date = parse_optional_date(as_of)
    except FieldError as error:
        fail(f"--as-of: {error}")
    try:
        result = start_billing_run(entity, as_of_date, "cli", Actor.system("cli"), dry_run, enqueue=not inline,
                                   ahead_of_time=ahead_of_time)
    except AsOfRefused as refused:
        fail(f"--as-of: {refused}" + ("; pass --ahead-of-time to bill ahead, or --dry-run to see what it would bill"
                                      if refused.needs_consent else ""))
    except RunRefused as refused:
        fail(str(refused))
    run_ = result.run
    if not result.started:
        if as_json:
            echo_json({**run_summary(run_), "refused": result.message})
        click.echo(f"Error: {result.message}", err=True)
        raise SystemExit(1)
    if inline:
        try:
            execute_run(run_.id, inline=True)
        except Exception:  # recorded on the run as failed
            db.session.rollback()
    elif wait:
        deadline = time.monotonic() + timeout
        while True:
            db.session.expire_all()
            db.session.refresh(run_)
            if run_.status not in ACTIVE_RUN_STATUSES or time.monotonic() > deadline:
                break
            db.session.rollback()  # end this read: the next one sees what the workers committed meanwhile
            time.sleep(0.3)
    db.session.expire_all()
    db.session.refresh(run_)
    summary = run_summary(run_)
    if as_json:
        echo_json(summary)
    else:
        if run_.status in ACTIVE_RUN_STATUSES:
            click.echo(result.message)
        echo_summary(summary)
    if run_.status == "failed" or (wait and run_.status in ACTIVE_RUN_STATUSES):
        raise SystemExit(1)


@group.command("runs")
@click.option("--entity", "code", required=True)
@click.option("--json", "as_json", is_flag=True)
def runs(code, as_json):
    """List the billing runs of a legal entity, newest first."""
    entity = entity_or_fail(code)
    rows = [run_summary(r) for r in db.session.scalars(
        select(BillingRun).where(BillingRun.legal_entity_id == entity.id).order_by(BillingRun.number.desc()))]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"No billing runs for {entity.code} yet: start one with `flask billing run --entity {entity.code}`.")
    for row in rows:
        echo_summary(row)


@group.command("show")
@click.argument("run_number", type=ID)
@click.option("--entity", "code", required=True)
@click.option("--json", "as_json", is_flag=True)
def show(run_number, code, as_json):
    """One run with its per-contract outcomes."""
    entity = entity_or_fail(code)
    run_ = db.session.scalar(select(BillingRun).where(BillingRun.legal_entity_id == entity.id,
                                                      BillingRun.number == run_number))
    if run_ is None:
        fail(f"{entity.code} has no run #{run_number} (see `flask billing runs --entity {entity.code}`)")
    items = [
        {"contract_ref": ref, "status": item.status, "periods": item.periods, "invoice_ids": item.invoice_ids,
         "totals": item.totals, "reason": item.reason}
        for item, ref in db.session.execute(
            select(BillingRunItem, Contract.reference).join(Contract, Contract.id == BillingRunItem.contract_id)
            .where(BillingRunItem.billing_run_id == run_.id).order_by(Contract.reference))
    ]
    if as_json:
        echo_json({**run_summary(run_), "items": items})
        return
    echo_summary(run_summary(run_))
    for item in items:
        detail = item["reason"] or ", ".join(item["periods"])
        click.echo(f"  {item['contract_ref']:<20} {item['status']:<9} {detail}")


@group.command("sweep")
def sweep():
    """Look after pending and running runs now, as the scheduler does every RUN_SUPERVISE_SECONDS.

    Re-queues the chunks of dead workers and those Redis lost; fails runs that have no live job
    and no progress for RUN_STALE_SECONDS."""
    result = supervise_runs()
    click.echo(f"{result.requeued} job(s) re-queued, {result.failed} run(s) failed, {result.finished} completed.")
