import click
from flask.cli import AppGroup

from app.agents.service import current_configuration, get_agent, list_agents, update_configuration
from app.audit import Actor
from app.cli.common import echo_json, fail
from app.extensions import db
from app.records.validation import ValidationError

group = AppGroup("agents", help="Agent definitions and their configuration.")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json):
    """The agents: key, name, execution mode, triggers, enabled."""
    rows = [{"key": a.key, "name": a.name, "execution_mode": a.execution_mode, "trigger_events": a.trigger_events,
             "enabled": a.enabled, "configuration": current_configuration(a)} for a in list_agents()]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['key']:<20} {r['name']:<28} {r['execution_mode']:<5} {'on ' if r['enabled'] else 'off'} "
                   f"{', '.join(r['trigger_events'])}")


@group.command("configure")
@click.argument("key")
@click.argument("settings", nargs=-1, metavar="NAME=VALUE...")
def configure(key, settings):
    """Change an agent's settings, e.g. `flask agents configure billing_run auto_post=false chunk_size=200`."""
    agent = get_agent(key)
    if agent is None:
        fail(f"unknown agent {key!r} (see `flask agents list`)")
    submitted = current_configuration(agent)
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"{item!r} is not NAME=VALUE")
        submitted[name.strip()] = value.strip()
    try:
        changes = update_configuration(agent, submitted, Actor.system("cli"))
    except ValidationError as error:
        fail(str(error))
    db.session.commit()
    if not changes:
        click.echo("Nothing changed.")
    for name, change in changes.items():
        click.echo(f"{name}: {change['old']} → {change['new']}")
