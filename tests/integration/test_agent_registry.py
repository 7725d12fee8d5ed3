"""Agents as modules: rows written from the specs (no migration per agent), one run path for any agent, and the
CLI that lists and runs every agent — on a real database, real Redis and real worker processes."""
import json
import os
import subprocess
import sys
from datetime import date

from click.testing import Result
from sqlalchemy import func, select

from app.agents.definitions import sync_definitions
from app.agents.registry import AGENTS, builtin_specs, default_rules, get_spec
from app.agents.runs import AgentRunRefused, request_run, run_inline
from app.audit import Actor
from app.extensions import db
from app.models import AgentDefinition, AgentRun, AuditEntry, BillingRun, OrchestrationRule
from app.queues import get_queue
from tests.conftest import ROOT
from tests.factories import make_contract, make_entity

ADMIN = Actor.system("test")


def invoke(runner, *args) -> Result:
    return runner.invoke(args=list(args), catch_exceptions=False)


def test_every_builtin_agent_module_is_found_and_has_its_row(db_session):
    assert [s.key for s in builtin_specs()][:4] == ["billing_run", "invoice_delivery", "payment_collection",
                                                   "reconciliation"]
    rows = {a.key: a for a in db_session.scalars(select(AgentDefinition).where(AgentDefinition.custom.is_(False)))}
    assert set(rows) == set(AGENTS)
    for spec in AGENTS.values():
        assert rows[spec.key].trigger_events == list(spec.trigger_events)
        assert set(rows[spec.key].configuration) == {s.name for s in spec.settings}


def test_a_new_agent_module_gets_its_row_and_rules_from_the_sync_without_a_migration(db_session):
    """As after `flask db upgrade` with a new module: the row and its default subscriptions appear."""
    with db.engine.begin() as conn:
        conn.execute(OrchestrationRule.__table__.delete().where(OrchestrationRule.agent_key == "reconciliation"))
        conn.execute(AgentDefinition.__table__.delete().where(AgentDefinition.key == "reconciliation"))
    with db.engine.begin() as conn:
        result = sync_definitions(conn)
    assert result.created == ["reconciliation"]
    db_session.expire_all()
    row = db_session.scalar(select(AgentDefinition).where(AgentDefinition.key == "reconciliation"))
    assert row.name == "Reconciliation Agent" and row.enabled and row.configuration == get_spec("reconciliation").defaults()
    rules = db_session.scalars(select(OrchestrationRule.event_type).where(
        OrchestrationRule.agent_key == "reconciliation")).all()
    assert rules == ["bank_statement.imported"]
    with db.engine.begin() as conn:
        assert sync_definitions(conn).created == [] and sync_definitions(conn).updated == []


def test_the_sync_keeps_what_admins_saved_drops_unknown_settings_and_adds_new_ones(db_session):
    agent = db_session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {"chunk_size": 500, "a_setting_of_an_older_version": 1}  # auto_post etc. missing
    agent.name = "Old name"
    db_session.commit()
    with db.engine.begin() as conn:
        assert sync_definitions(conn).updated == ["billing_run"]
    db_session.expire_all()
    assert agent.configuration == {**get_spec("billing_run").defaults(), "chunk_size": 500}
    assert agent.name == "Billing Run Agent"


def test_default_rules_come_from_the_specs_subscriptions():
    assert ("invoice.issued", "invoice_delivery") in default_rules()
    assert ("invoice.issued", "payment_collection") in default_rules()
    # the relay runs delivery before collection on an issued invoice, as before
    issued = [agent for event, agent in default_rules() if event == "invoice.issued"]
    assert issued.index("invoice_delivery") < issued.index("payment_collection")


def test_an_agent_that_only_acts_on_events_cannot_be_run_and_nothing_is_recorded(db_session):
    entity = make_entity()
    db_session.commit()
    agent = db_session.scalar(select(AgentDefinition).where(AgentDefinition.key == "invoice_delivery"))
    try:
        request_run(agent, entity, "manual", ADMIN)
    except AgentRunRefused as refused:
        assert "acts on events" in str(refused)
    else:
        raise AssertionError("a run of the Invoice Delivery Agent was accepted")
    assert db_session.scalar(select(func.count()).select_from(AgentRun)) == 0


def test_a_disabled_agent_runs_only_as_a_test(db_session):
    entity = make_entity()
    agent = db_session.scalar(select(AgentDefinition).where(AgentDefinition.key == "reconciliation"))
    agent.enabled = False
    db_session.commit()
    try:
        run_inline(agent, entity, "manual", ADMIN)
    except AgentRunRefused as refused:
        assert "disabled" in str(refused)
    else:
        raise AssertionError("a disabled agent ran")
    run = run_inline(agent, entity, "test", ADMIN)
    assert run.status == "succeeded" and "test run changes nothing" in run.summary


def test_a_queued_run_is_done_by_a_real_worker_on_the_agents_queue_and_audited(app, db_session):
    entity = make_entity()
    db_session.commit()
    agent = db_session.scalar(select(AgentDefinition).where(AgentDefinition.key == "reconciliation"))
    run = request_run(agent, entity, "manual", Actor("user", "admin@example.com"))
    assert run.status == "queued" and run.job_id == f"agent-run-{run.id}"
    assert run.job_id in get_queue(get_spec("reconciliation").queue).job_ids
    result = subprocess.run([sys.executable, "worker.py", "--burst", "default"], cwd=ROOT, env={**os.environ},
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    db_session.expire_all()
    run = db_session.get(AgentRun, run.id)
    assert run.status == "succeeded" and run.summary == "0 matched, 0 partially, 0 waiting"
    assert run.started_at is not None and run.finished_at >= run.started_at
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.subject_type == "agent",
                                                                 AuditEntry.subject_id == agent.id)).all()
    assert actions == ["agent.run_requested", "agent.run_finished"]


def test_cli_lists_every_agent_with_the_interface_fields(runner, db_session):
    result = invoke(runner, "agents", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["key"] for r in rows][:4] == ["billing_run", "invoice_delivery", "payment_collection", "reconciliation"]
    for row in rows:
        assert {"key", "name", "mode", "triggers", "enabled", "custom"} <= set(row)
        assert row["mode"] == "code" and row["custom"] is False and isinstance(row["triggers"], list)
    billing = rows[0]
    assert billing["runs"] is True and "schedule.triggered" in billing["triggers"]


def test_cli_runs_the_billing_agent_and_waits_for_its_billing_run(app, runner, db_session, processes):
    entity = make_entity(code="AT01", country="AT")
    make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
    db_session.commit()
    processes.worker("billing", {}, "billing", "default")
    result = invoke(runner, "agents", "run", "billing_run", "--entity", "AT01", "--as-of", "2026-11-26", "--wait",
                    "--timeout", "120", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["status"] == "succeeded" and row["trigger"] == "cli" and row["billing_run_id"]
    db_session.expire_all()
    billing = db_session.get(BillingRun, row["billing_run_id"])
    assert billing.status == "completed" and billing.trigger == "cli" and billing.invoices_created == 1
    assert billing.trigger_ref == f"agent_run:{row['agent_run']}"


def test_cli_refuses_an_unknown_agent_an_event_only_agent_and_an_unknown_entity(runner, db_session):
    make_entity()
    db_session.commit()
    result = runner.invoke(args=["agents", "run", "nope", "--entity", "DE01"])
    assert result.exit_code == 1 and "unknown agent 'nope' for DE01" in result.output
    result = runner.invoke(args=["agents", "run", "invoice_delivery", "--entity", "DE01"])
    assert result.exit_code == 1 and "acts on events" in result.output
    result = runner.invoke(args=["agents", "run", "billing_run", "--entity", "XX99"])
    assert result.exit_code == 1 and "unknown legal entity 'XX99'" in result.output
    assert db_session.scalar(select(func.count()).select_from(AgentRun)) == 0


def test_a_schedule_fires_any_schedulable_agent_through_the_one_run_path(db_session):
    from datetime import datetime, timezone

    from app.models import ScheduleFire
    from app.schedules.cron import Preset
    from app.schedules.service import ScheduleInput, create_schedule, fire_schedule

    entity = make_entity()
    schedule = create_schedule(entity, ScheduleInput("reconciliation", "", Preset("daily", "07:00")), ADMIN)
    db_session.commit()
    slot = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)
    result = fire_schedule(schedule.id, slot)
    assert result.fired and result.message == "0 matched, 0 partially, 0 waiting"
    run = db_session.get(AgentRun, result.agent_run_id)
    assert run.trigger == "schedule" and run.status == "succeeded" and run.requested_by.startswith("schedule #")
    fire = db_session.scalar(select(ScheduleFire).where(ScheduleFire.scheduled_job_id == schedule.id))
    assert fire.agent_run_id == run.id and fire.billing_run_id is None
    assert not fire_schedule(schedule.id, slot).fired  # the same slot again: nothing
    assert db_session.scalar(select(func.count()).select_from(AgentRun)) == 1


def test_cli_creates_a_custom_agent_from_a_template_with_its_schedule_and_runs_it(runner, db_session, mail_sink):
    from app.models import AgentVersion, ScheduledJob

    make_entity()
    db_session.commit()
    result = invoke(runner, "agents", "create", "--template", "ar_aging_reporter", "--name", "Weekly overdue",
                    "--entity", "DE01", "--set", "days_overdue=30", "--set", "recipients=a@x.example",
                    "--cron", "0 8 * * 1", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert (row["key"], row["custom"], row["template"], row["entity"], row["enabled"]) == (
        "custom_de01_weekly_overdue", True, "ar_aging_reporter", "DE01", True)
    assert row["schedule"] == "0 8 * * 1" and row["triggers"] == ["manual.trigger", "schedule.triggered"]
    schedule = db_session.scalar(select(ScheduledJob))
    assert schedule.agent.key == "custom_de01_weekly_overdue" and schedule.legal_entity.code == "DE01"
    assert db_session.scalar(select(AgentVersion.summary)) == "created from the AR Aging Reporter template"
    listed = json.loads(invoke(runner, "agents", "list", "--json").output)
    assert [r["key"] for r in listed][-1] == "custom_de01_weekly_overdue" and listed[-1]["custom"] is True

    result = invoke(runner, "agents", "run", "custom_de01_weekly_overdue", "--entity", "DE01", "--inline", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "succeeded"
    message, = mail_sink.messages()
    assert message["To"] == "a@x.example" and "no invoices overdue more than 30 days" in message["Subject"]

    refused = runner.invoke(args=["agents", "create", "--template", "ar_aging_reporter", "--name", "Weekly overdue",
                                  "--entity", "DE01", "--set", "recipients=nobody", "--cron", "every monday"])
    assert refused.exit_code == 1
    assert "name:" in refused.output and "--set recipients:" in refused.output and "cron:" in refused.output
    assert db_session.scalar(select(func.count()).select_from(AgentDefinition).where(
        AgentDefinition.custom.is_(True))) == 1
