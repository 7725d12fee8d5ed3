import click
from flask.cli import AppGroup

from app.audit import Actor
from app.cli.common import entity_or_fail
from app.cli.common import ID, echo_json, fail
from app.errors import ScheduleError
from app.extensions import db
from app.models import ScheduledJob
from app.models.types import utcnow
from app.schedules.cron import Preset, next_fires
from app.schedules.service import (ScheduleInput, create_schedule, delete_schedule, last_fire, list_schedules,
                                   upcoming, when_in_words)
from app.schedules.sync import sync_after_change, sync_schedules

group = AppGroup("schedules", help="Scheduled jobs: when agents fire.")


def schedule_row(schedule: ScheduledJob) -> dict:
    fire = last_fire(schedule)
    return {
        "id": schedule.id, "name": schedule.name, "agent": schedule.agent.key, "entity": schedule.legal_entity.code,
        "cron": schedule.cron, "timezone": schedule.legal_entity.timezone, "when": when_in_words(schedule),
        "enabled": schedule.enabled,
        "last_fire": fire.fired_at.isoformat() if fire else None,
        "last_slot": fire.slot.astimezone(upcoming(schedule, 1)[0].tzinfo).isoformat() if fire else None,
        "last_run_id": fire.billing_run_id if fire else None,
        "next_fires": [f.isoformat() for f in upcoming(schedule, 5)] if schedule.enabled else [],
    }


@group.command("add")
@click.option("--agent", "agent_key", required=True, help="Agent key, e.g. billing_run.")
@click.option("--entity", "code", required=True)
@click.option("--cron", "expression", required=True, help="Read in the entity's time zone, e.g. '0 6 * * 1'.")
@click.option("--name", default="", help="Default: the schedule in words.")
def add(agent_key, code, expression, name):
    """Add a schedule (cron in the legal entity's time zone)."""
    entity = entity_or_fail(code)
    try:
        schedule = create_schedule(entity, ScheduleInput(agent_key, name, Preset("cron", cron=expression)),
                                   Actor.system("cli"))
    except ScheduleError as error:
        fail(str(error))
    click.echo(f"Added schedule #{schedule.id}: {when_in_words(schedule)} → {schedule.agent.name} for {entity.code}")
    warning = sync_after_change()
    if warning:
        click.echo(f"Warning: {warning}", err=True)


@group.command("list")
@click.option("--entity", "code")
@click.option("--json", "as_json", is_flag=True)
def list_(code, as_json):
    """The schedules, with their next five fire times."""
    entity = entity_or_fail(code) if code else None
    rows = [schedule_row(s) for s in list_schedules(entity)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No schedules: add one with `flask schedules add --agent billing_run --entity CODE --cron '0 6 * * 1'`.")
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        click.echo(f"#{r['id']} {r['name']} [{state}] {r['agent']} {r['entity']}: {r['when']}; "
                   f"next {r['next_fires'][0] if r['next_fires'] else '-'}")


@group.command("remove")
@click.argument("schedule_id", type=ID)
def remove(schedule_id):
    """Delete a schedule; its rq-scheduler job is cancelled."""
    schedule = db.session.get(ScheduledJob, schedule_id)
    if schedule is None:
        fail(f"no schedule #{schedule_id} (see `flask schedules list`)")
    delete_schedule(schedule, Actor.system("cli"))
    click.echo(f"Removed schedule #{schedule_id}.")
    warning = sync_after_change()
    if warning:
        click.echo(f"Warning: {warning}", err=True)


@group.command("sync")
def sync():
    """Put the schedules into rq-scheduler (idempotent)."""
    try:
        result = sync_schedules()
    except Exception as error:  # noqa: BLE001
        fail(f"could not reach Redis: {error}")
    click.echo(f"Synced: {result.added} added, {result.replaced} replaced, {result.kept} kept, "
               f"{result.cancelled} cancelled.")


@group.command("preview")
@click.option("--cron", "expression", required=True)
@click.option("--timezone", "tz_name", required=True)
@click.option("--start", help="ISO 8601 date-time (default now); naive means in --timezone.")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True)
def preview(expression, tz_name, start, count, as_json):
    """The next fire times of a cron expression in a time zone."""
    from datetime import datetime

    from app.schedules.cron import zone

    try:
        tz = zone(tz_name)
        if start:
            try:
                after = datetime.fromisoformat(start)
            except ValueError:
                raise ScheduleError(f"--start {start!r} is not an ISO 8601 date-time (e.g. 2026-03-28T00:00)") from None
            if after.tzinfo is None:
                after = after.replace(tzinfo=tz)
        else:
            after = utcnow()
        fires = next_fires(expression, tz_name, after, count)
    except ScheduleError as error:
        fail(str(error))
    if as_json:
        echo_json([f.isoformat() for f in fires])
        return
    for fire in fires:
        click.echo(fire.isoformat())
