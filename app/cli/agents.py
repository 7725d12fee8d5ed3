import time

import click
from flask.cli import AppGroup

from app.agents.custom import CustomAgentInput, create_custom_agent, events_of, schedule_of
from app.agents.registry import TEMPLATES, spec_of
from app.agents.runs import FINAL, request_run, run_inline
from app.agents.service import current_configuration, get_agent, list_agents, masked, update_configuration, visible_to
from app.audit import Actor
from app.cli.common import echo_json, entity_or_fail, fail
from app.errors import AgentRunRefused
from app.extensions import db
from app.models import AgentRun, BillingRun
from app.models.runs import ACTIVE_RUN_STATUSES
from app.records.validation import FieldError, ValidationError, parse_optional_date
from app.schedules.sync import sync_after_change

group = AppGroup("agents", help="Agents: the catalogue, their configuration, custom agents, runs.")


def _row(agent) -> dict:
    spec = spec_of(agent)
    triggers = list(agent.trigger_events or [])
    return {"key": agent.key, "name": agent.name, "mode": agent.execution_mode, "triggers": triggers,
            "enabled": agent.enabled, "custom": agent.custom, "template": agent.template,
            "entity": agent.legal_entity.code if agent.legal_entity else None, "version": agent.version,
            "installed": spec is not None, "runs": bool(spec and spec.run), "schedule": schedule_of(agent),
            "events": events_of(agent),
            # (the names of 0.x, kept for scripts that read them)
            "execution_mode": agent.execution_mode, "trigger_events": triggers,
            "configuration": masked(spec, current_configuration(agent))}


@group.command("list")
@click.option("--entity", "code", help="Only the built-in agents and this legal entity's custom agents.")
@click.option("--json", "as_json", is_flag=True)
def list_(code, as_json):
    """Every agent: key, name, mode, triggers, enabled, custom (built-in first, then custom agents)."""
    entity_id = entity_or_fail(code).id if code else None
    rows = [_row(a) for a in list_agents(entity_id)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        kind = f"custom:{r['template']}@{r['entity']}" if r["custom"] else "built-in"
        click.echo(f"{r['key']:<34} {r['name']:<28} {r['mode']:<5} {'on ' if r['enabled'] else 'off'} {kind:<28} "
                   f"{', '.join(r['triggers'])}")


@group.command("templates")
@click.option("--json", "as_json", is_flag=True)
def templates_(as_json):
    """The templates custom agents are made from, with their settings."""
    rows = [{"key": t.key, "name": t.name, "description": t.description,
             "settings": [{"name": s.name, "label": s.label, "type": s.type, "default": "" if s.secret else s.default,
                           "secret": s.secret} for s in t.settings],
             "events": list(t.subscribes)} for t in sorted(TEMPLATES.values(), key=lambda t: t.key)]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['key']:<20} {r['name']}: " + ", ".join(f"{s['name']}={s['default']}" for s in r["settings"]))


def _pairs(items, option: str) -> dict:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"{option} {item!r} is not NAME=VALUE")
        values[name.strip()] = value.strip()
    return values


@group.command("configure")
@click.argument("key")
@click.argument("settings", nargs=-1, metavar="NAME=VALUE...")
def configure(key, settings):
    """Change an agent's settings, e.g. `flask agents configure billing_run auto_post=false chunk_size=200`."""
    agent = get_agent(key)
    if agent is None:
        fail(f"unknown agent {key!r} (see `flask agents list`)")
    submitted = {**current_configuration(agent), **_pairs(settings, "setting")}
    try:
        changes = update_configuration(agent, submitted, Actor.system("cli"))
    except ValidationError as error:
        fail(str(error))
    if not changes:
        click.echo("Nothing changed.")
    for name, change in changes.items():
        click.echo(f"{name}: {change['old']} → {change['new']}")


@group.command("create")
@click.option("--template", required=True, help="A template key (see `flask agents templates`).")
@click.option("--name", required=True, help="The agent's name, e.g. \"Weekly overdue\".")
@click.option("--entity", "code", required=True, help="The legal entity it works for, e.g. DE01.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="A setting; repeat for each.")
@click.option("--cron", default="", help="A schedule in the entity's time zone, e.g. \"0 8 * * 1\" (Mondays 08:00).")
@click.option("--event", "events", multiple=True,
              help="An event that runs it (templates that take events); default: the template's own.")
@click.option("--disabled", is_flag=True, help="Create it disabled (test it first: `flask agents run KEY --test`).")
@click.option("--json", "as_json", is_flag=True)
def create(template, name, code, settings, cron, events, disabled, as_json):
    """Create a custom agent from a template for one legal entity."""
    entity = entity_or_fail(code)
    spec = TEMPLATES.get(template)
    if spec is None:
        fail(f"unknown template {template!r}: use one of {', '.join(sorted(TEMPLATES))}")
    data = CustomAgentInput(template=template, name=name, settings=_pairs(settings, "--set"), cron=cron,
                            events=tuple(events) if events else tuple(spec.subscribes), enabled=not disabled)
    try:
        agent = create_custom_agent(entity, data, Actor.system("cli"))
    except ValidationError as error:
        fail("; ".join(f"{field.replace('settings.', '--set ')}: {message}"
                       for field, message in error.errors.items()))
    warning = sync_after_change() if cron.strip() else None
    if as_json:
        echo_json({**_row(agent), "warning": warning})
    else:
        click.echo(f"Created {agent.key} ({agent.name}) for {entity.code}, "
                   f"{'enabled' if agent.enabled else 'disabled'}"
                   + (f"; schedule {cron}" if cron.strip() else "") + ".")
        if warning:
            click.echo(f"Warning: {warning}", err=True)


@group.command("run")
@click.argument("key")
@click.option("--entity", "code", required=True, help="The legal entity to run it for, e.g. DE01.")
@click.option("--as-of", "as_of", help="YYYY-MM-DD, for agents that read one (default: today in the entity's zone).")
@click.option("--test", is_flag=True, help="A test run: show what it would do, send nothing.")
@click.option("--inline", is_flag=True, help="Run in this process, without a worker.")
@click.option("--wait", is_flag=True, help="Wait until the run (and a billing run it starts) ends.")
@click.option("--timeout", default=3600, show_default=True, help="Seconds --wait waits at most.")
@click.option("--json", "as_json", is_flag=True)
def run(key, code, as_of, test, inline, wait, timeout, as_json):
    """Run any agent now for a legal entity (queued on the agent's queue unless --inline)."""
    entity = entity_or_fail(code)
    agent = get_agent(key)
    if agent is None or not visible_to(agent, entity.id):
        fail(f"unknown agent {key!r} for {entity.code} (see `flask agents list --entity {entity.code}`)")
    try:
        as_of_date = parse_optional_date(as_of)
    except FieldError as error:
        fail(f"--as-of: {error}")
    trigger, actor = ("test" if test else "cli"), Actor.system("cli")
    try:
        if inline:
            agent_run = run_inline(agent, entity, trigger, actor, as_of=as_of_date)
        else:
            agent_run = request_run(agent, entity, trigger, actor, as_of=as_of_date)
    except AgentRunRefused as refused:
        fail(str(refused))
    run_id = agent_run.id
    if wait and not inline:
        agent_run = _wait(run_id, time.monotonic() + timeout)
    db.session.expire_all()
    agent_run = db.session.get(AgentRun, run_id)
    row = {"agent_run": agent_run.id, "agent": agent.key, "entity": entity.code, "trigger": agent_run.trigger,
           "status": agent_run.status, "summary": agent_run.summary, "billing_run_id": agent_run.billing_run_id,
           "details": agent_run.details, "job_id": agent_run.job_id}
    if wait and not inline and agent_run.status not in FINAL:
        fail(f"run {agent_run.id} is still {agent_run.status} after {timeout} s (is a worker running? `make run` "
             f"starts them)")
    if as_json:
        echo_json(row)
    else:
        click.echo(f"{agent.name} run {agent_run.id} for {entity.code}: {agent_run.status}"
                   + (f" — {agent_run.summary}" if agent_run.summary else ""))
    if agent_run.status == "failed":
        raise SystemExit(1)


def _wait(run_id: int, deadline: float) -> AgentRun:
    """Until the run is final (and the billing run it started, if any, has ended) or the deadline passes."""
    while True:
        db.session.expire_all()
        agent_run = db.session.get(AgentRun, run_id)
        billing = db.session.get(BillingRun, agent_run.billing_run_id) if agent_run.billing_run_id else None
        done = agent_run.status in FINAL and (billing is None or billing.status not in ACTIVE_RUN_STATUSES)
        if done or time.monotonic() > deadline:
            return agent_run
        db.session.rollback()  # end this read: the next one sees what the worker committed meanwhile
        time.sleep(0.3)
