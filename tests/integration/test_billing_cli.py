"""`flask billing …`, `flask invoices list`, `flask events relay`: the scripting interface."""
import json
import os
import subprocess
import sys
from datetime import date

from sqlalchemy import func, select

from app.extensions import db
from app.models import BillingRun, Event
from tests.conftest import ROOT
from tests.factories import make_contract, make_entity


def seed(app):
    with app.app_context():
        entity = make_entity()
        make_contract(entity, "C-1001", start=date(2026, 11, 1), customer="Bolt")
        make_contract(entity, "C-1002", start=date(2026, 11, 1), customer="Starship Technologies")
        make_contract(entity, "C-BAD", start=date(2026, 11, 1), lines=[("x", "1", "1", None)], customer="Broken")
        db.session.commit()


def invoke_json(runner, *args):
    result = runner.invoke(args=[*args, "--json"])
    return result, json.loads(result.output) if result.output.strip().startswith(("{", "[")) else None


def test_billing_run_inline_json(app, runner):
    seed(app)
    result, data = invoke_json(runner, "billing", "run", "--entity", "de01", "--as-of", "2026-11-26", "--inline")
    assert result.exit_code == 0, result.output
    assert data["run_number"] == 1 and data["status"] == "completed_with_errors" and data["as_of"] == "2026-11-26"
    assert (data["contracts"], data["invoiced"], data["invoices"], data["failed"]) == (3, 2, 2, 1)
    assert data["totals"] == {"EUR": "117.06"} and data["dry_run"] is False
    assert isinstance(data["duration_s"], float)

    result, rows = invoke_json(runner, "invoices", "list", "--entity", "DE01")
    assert [(r["number"], r["contract_ref"], r["customer"], r["net"], r["tax"], r["total"], r["status"]) for r in rows] == [
        ("DE01-2026-000001", "C-1001", "Bolt", "49.00", "9.53", "58.53", "issued"),
        ("DE01-2026-000002", "C-1002", "Starship Technologies", "49.00", "9.53", "58.53", "issued"),
    ]
    assert rows[0]["period_start"] == "2026-11-01" and rows[0]["period_end"] == "2026-11-30"
    assert rows[0]["issue_date"] == "2026-11-26" and rows[0]["due_date"] == "2026-12-10"

    result, shown = invoke_json(runner, "billing", "show", "1", "--entity", "DE01")
    bad = next(i for i in shown["items"] if i["contract_ref"] == "C-BAD")
    assert bad["status"] == "failed" and bad["reason"] == "line 1: VAT rate missing"

    result, again = invoke_json(runner, "billing", "run", "--entity", "DE01", "--as-of", "2026-11-26", "--inline")
    assert result.exit_code == 0 and again["invoices"] == 0 and again["totals"] == {}
    result, runs = invoke_json(runner, "billing", "runs", "--entity", "DE01")
    assert [r["run_number"] for r in runs] == [2, 1]


def test_billing_run_dry_run(app, runner):
    seed(app)
    result, data = invoke_json(runner, "billing", "run", "--entity", "DE01", "--as-of", "2026-11-26", "--inline",
                               "--dry-run")
    assert result.exit_code == 0 and data["dry_run"] is True and data["totals"] == {"EUR": "117.06"}
    result, rows = invoke_json(runner, "invoices", "list", "--entity", "DE01")
    assert rows == []


def test_billing_run_refuses_bad_input_with_exit_1(app, runner):
    seed(app)
    unknown = runner.invoke(args=["billing", "run", "--entity", "XX99"])
    assert unknown.exit_code == 1 and "unknown legal entity 'XX99'" in unknown.output
    bad_date = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", "26.11.2026"])
    assert bad_date.exit_code == 1 and "is not a date (use YYYY-MM-DD)" in bad_date.output
    missing = runner.invoke(args=["billing", "show", "9", "--entity", "DE01"])
    assert missing.exit_code == 1 and "has no run #9" in missing.output
    far = runner.invoke(args=["billing", "show", "99999999999", "--entity", "DE01"])  # past PostgreSQL's integer
    assert far.exit_code == 2 and "99999999999 is not in the range 1<=x<=2147483647" in far.output
    late = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", "9999-12-31", "--inline"])
    assert late.exit_code == 1 and "9999-12-31 is outside the dates Arbill takes" in late.output


def test_a_second_run_while_one_is_pending_is_refused(app, runner):
    seed(app)
    queued = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", "2026-11-26"])
    assert queued.exit_code == 0 and "queued" in queued.output
    refused = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", "2026-11-26", "--inline"])
    assert refused.exit_code == 1 and "Run #1 is already pending" in refused.output


def test_billing_run_wait_with_a_worker(app, runner):
    seed(app)
    worker = subprocess.Popen([sys.executable, "worker.py", "billing", "default"], cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "flask", "billing", "run", "--entity", "DE01", "--as-of",
                               "2026-11-26", "--wait", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        worker.terminate()
        worker.wait(30)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "completed_with_errors" and data["totals"] == {"EUR": "117.06"}


def test_events_relay_marks_the_outbox_dispatched(app, runner):
    seed(app)
    runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", "2026-11-26", "--inline"])
    with app.app_context():
        pending = db.session.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None)))
        assert pending == 4  # started, 2 × invoice.issued, completed
    result = runner.invoke(args=["events", "relay"])
    assert result.exit_code == 0 and "Dispatched 4 event(s)" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 1


def test_billing_ahead_of_time_needs_the_flag_and_stays_within_the_cap(app, runner):
    """Issue 13: an as-of date a year ahead was accepted. After today in the entity's zone it needs
    --ahead-of-time; beyond RUN_AS_OF_MAX_DAYS_AHEAD (31) it is refused; a dry run may look further."""
    from datetime import timedelta

    from app.models import LegalEntity

    seed(app)
    with app.app_context():
        today = db.session.scalar(select(LegalEntity)).today()
    ahead, far = (today + timedelta(days=10)).isoformat(), (today + timedelta(days=32)).isoformat()
    refused = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", ahead, "--inline"])
    assert refused.exit_code == 1
    assert (f"Error: --as-of: as-of {ahead} is 10 days after today ({today.isoformat()} in Europe/Berlin): billing "
            "ahead of time must be asked for explicitly; pass --ahead-of-time to bill ahead, or --dry-run to see what "
            "it would bill") in refused.output
    capped = runner.invoke(args=["billing", "run", "--entity", "DE01", "--as-of", far, "--inline", "--ahead-of-time"])
    assert capped.exit_code == 1 and "a billing run bills at most 31 days ahead (RUN_AS_OF_MAX_DAYS_AHEAD)" in capped.output
    assert f"choose an as-of date up to {(today + timedelta(days=31)).isoformat()}" in capped.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 0
    result, data = invoke_json(runner, "billing", "run", "--entity", "DE01", "--as-of", far, "--inline", "--dry-run")
    assert result.exit_code == 0 and data["dry_run"] is True and data["as_of"] == far
    result, data = invoke_json(runner, "billing", "run", "--entity", "DE01", "--as-of", ahead, "--inline",
                               "--ahead-of-time")
    assert result.exit_code == 0 and data["dry_run"] is False and data["as_of"] == ahead and data["invoices"] >= 2
