"""Schedules on a real Redis: sync into rq-scheduler, fire through the one entrance, once per slot."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from rq_scheduler import Scheduler
from sqlalchemy import func, select

from app.audit import Actor
from app.extensions import db
from app.models import AuditEntry, BillingRun, ScheduledJob, ScheduleFire
from app.models.types import utcnow
from app.queues import get_redis
from app.schedules.cron import Preset
from app.schedules.service import (ScheduleInput, create_schedule, delete_schedule, fire_schedule, missed_slots,
                                   set_schedule_enabled, update_schedule)
from app.schedules.sync import SYSTEM_JOBS, sync_schedules
from tests.conftest import ROOT
from tests.factories import make_contract, make_entity
from datetime import date

ADMIN = Actor.system("test")


def new_schedule(entity, cron="0 6 * * 1", name=""):
    schedule = create_schedule(entity, ScheduleInput("billing_run", name, Preset("cron", cron=cron)), ADMIN)
    db.session.commit()
    return schedule


def scheduled_ids():
    return sorted(job.id for job in Scheduler(connection=get_redis()).get_jobs())


def test_sync_is_idempotent_one_job_per_schedule_plus_system_jobs(db_session):
    entity = make_entity(timezone="Europe/Berlin")
    a, b = new_schedule(entity), new_schedule(entity, "30 7 * * *")
    system = sorted(job.id for job in SYSTEM_JOBS)
    first = sync_schedules()
    assert (first.added, first.kept) == (2, 0)
    second = sync_schedules()
    assert (second.added, second.replaced, second.kept, second.cancelled) == (0, 0, 2, 0)
    assert scheduled_ids() == sorted([f"schedule-{a.id}", f"schedule-{b.id}", *system])

    job = {j.id: (j, t) for j, t in Scheduler(connection=get_redis()).get_jobs(with_times=True)}[f"schedule-{a.id}"]
    slot = datetime.fromisoformat(job[0].args[1])
    assert slot.weekday() == 0 and slot.astimezone(entity_zone(entity)).hour == 6  # Monday 06:00 Berlin

    update_schedule(a, ScheduleInput("billing_run", "", Preset("daily", "05:00")), ADMIN)
    db.session.commit()
    assert sync_schedules().replaced == 1
    set_schedule_enabled(b, False, ADMIN)
    db.session.commit()
    assert sync_schedules().cancelled == 1
    delete_schedule(a, ADMIN)
    db.session.commit()
    assert sync_schedules().cancelled == 1
    assert scheduled_ids() == system


def entity_zone(entity):
    from zoneinfo import ZoneInfo

    return ZoneInfo(entity.timezone)


def test_starting_the_scheduler_twice_keeps_one_job_per_schedule(app, db_session):
    entity = make_entity()
    schedule = new_schedule(entity)
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "flask", "scheduler", "run", "--burst"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert result.returncode == 0, result.stderr
    ids = scheduled_ids()
    assert ids.count(f"schedule-{schedule.id}") == 1 and len(ids) == 1 + len(SYSTEM_JOBS)


def test_a_due_schedule_fires_through_the_scheduler_and_a_worker(app, db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 1, 1))
    schedule = new_schedule(entity, "*/5 * * * *", name="Every five minutes")
    sync_schedules(now=utcnow() - timedelta(minutes=10))  # its next slot is already in the past: due now
    env = os.environ.copy()
    tick = subprocess.run([sys.executable, "-c", "from app import create_app; from app.cli.scheduler import "
                           "HeartbeatScheduler; from app.queues import get_redis; app = create_app(); "
                           "ctx = app.app_context(); ctx.push(); "
                           "HeartbeatScheduler(connection=get_redis(), interval=1).enqueue_jobs()"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert tick.returncode == 0, tick.stderr
    worker = subprocess.run([sys.executable, "worker.py", "--burst", "billing", "default"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    db.session.expire_all()
    run = db.session.scalar(select(BillingRun))
    assert run is not None, worker.stdout
    assert run.trigger == "schedule" and run.actor_type == "schedule"
    assert run.actor_label == f"schedule #{schedule.id} Every five minutes"
    assert run.status == "completed" and run.invoices_created > 0
    queued = db.session.scalar(select(AuditEntry).where(AuditEntry.billing_run_id == run.id,
                                                        AuditEntry.action == "billing_run.queued"))
    assert queued.actor_type == "schedule" and f"schedule #{schedule.id}" in queued.actor_label
    fire = db.session.scalar(select(ScheduleFire))
    assert fire.billing_run_id == run.id
    # The fire put the next slot into rq-scheduler, in the future.
    job = {j.id: j for j in Scheduler(connection=get_redis()).get_jobs()}[f"schedule-{schedule.id}"]
    assert datetime.fromisoformat(job.args[1]) > utcnow()


def test_the_same_slot_fired_twice_starts_one_run(db_session):
    entity = make_entity()
    schedule = new_schedule(entity)
    slot = datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc)
    first = fire_schedule(schedule.id, slot)
    second = fire_schedule(schedule.id, slot)
    assert first.fired and not second.fired and "already fired" in second.message
    assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 1
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "schedule.duplicate_fire_ignored"))
    # A different slot while that run is still pending is refused as "already pending", not a second run.
    third = fire_schedule(schedule.id, slot + timedelta(days=7))
    assert third.fired and "already pending" in third.message
    assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 1


def test_a_disabled_schedule_does_not_fire(db_session):
    entity = make_entity()
    schedule = new_schedule(entity)
    set_schedule_enabled(schedule, False, ADMIN)
    db.session.commit()
    assert not fire_schedule(schedule.id, utcnow()).fired
    assert db.session.scalar(select(func.count()).select_from(BillingRun)) == 0


def test_missed_slots_while_the_scheduler_was_down(db_session):
    entity = make_entity(timezone="UTC")
    schedule = new_schedule(entity, "0 6 * * *")
    # Made a minute after the 06:00 slot three days before the latest one: whatever the time of day, the
    # scheduler was down for exactly three slots.
    now = utcnow()
    latest = now.replace(hour=6, minute=0, second=0, microsecond=0)
    latest -= timedelta(days=1) if latest > now else timedelta(0)
    three_days_ago = latest - timedelta(days=3) + timedelta(minutes=1)
    db.session.execute(ScheduledJob.__table__.update().values(created_at=three_days_ago, updated_at=three_days_ago))
    db.session.commit()
    db.session.expire_all()
    missed = missed_slots(db.session.get(ScheduledJob, schedule.id))
    assert len(missed) == 3 and all(m.hour == 6 for m in missed)


def test_cli_add_list_preview_remove(app, runner, db_session):
    make_entity(timezone="Europe/Berlin")
    db.session.commit()
    added = runner.invoke(args=["schedules", "add", "--agent", "billing_run", "--entity", "DE01", "--cron", "0 6 * * 1",
                                "--name", "Monday billing"])
    assert added.exit_code == 0, added.output
    assert "Every Monday at 06:00 Europe/Berlin" in added.output
    listed = json.loads(runner.invoke(args=["schedules", "list", "--entity", "DE01", "--json"]).output)
    row = listed[0]
    assert (row["name"], row["agent"], row["entity"], row["cron"], row["timezone"], row["enabled"], row["last_fire"]) == (
        "Monday billing", "billing_run", "DE01", "0 6 * * 1", "Europe/Berlin", True, None)
    assert len(row["next_fires"]) == 5
    for fire in row["next_fires"]:
        parsed = datetime.fromisoformat(fire)
        assert parsed.weekday() == 0 and parsed.hour == 6 and parsed.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    assert f"schedule-{row['id']}" in scheduled_ids()  # synced after the change

    bad = runner.invoke(args=["schedules", "add", "--agent", "billing_run", "--entity", "DE01", "--cron", "0 6 * *"])
    assert bad.exit_code == 1 and "needs 5 fields" in bad.output
    unknown = runner.invoke(args=["schedules", "add", "--agent", "nope", "--entity", "DE01", "--cron", "0 6 * * 1"])
    assert unknown.exit_code == 1 and "unknown agent 'nope'" in unknown.output

    removed = runner.invoke(args=["schedules", "remove", str(row["id"])])
    assert removed.exit_code == 0 and f"schedule-{row['id']}" not in scheduled_ids()
    assert runner.invoke(args=["schedules", "remove", str(row["id"])]).exit_code == 1


def test_cli_preview_across_dst(runner, app):
    result = runner.invoke(args=["schedules", "preview", "--cron", "0 6 * * *", "--timezone", "Europe/Berlin",
                                 "--start", "2026-03-27T12:00:00+01:00", "--count", "3", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == ["2026-03-28T06:00:00+01:00", "2026-03-29T06:00:00+02:00",
                                         "2026-03-30T06:00:00+02:00"]
    for args, message in [(["--cron", "bogus", "--timezone", "UTC"], "is not a cron expression"),
                          (["--cron", "0 6 * * *", "--timezone", "Mars/Base"], "unknown time zone 'Mars/Base'")]:
        failed = runner.invoke(args=["schedules", "preview", *args])
        assert failed.exit_code == 1 and message in failed.output
