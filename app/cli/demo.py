from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli.common import fail
from app.demo import database_is_empty, seed_demo
from app.errors import DemoAlreadyLoaded

group = AppGroup("demo", help="Demo data for the walkthrough.")


@group.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database already has data.")
def seed(if_empty: bool) -> None:
    """Load the walkthrough's data: an admin, legal entity DE01, Bolt and Starship Technologies."""
    if not current_app.config.get("DEMO_DATA_ALLOWED", True):
        fail("the demo's admin password is published in the README: production does not load the demo data")
    if if_empty and not database_is_empty():
        click.echo("The database already has data; demo data not loaded.")
        return
    try:
        result = seed_demo(date.today())
    except DemoAlreadyLoaded as error:
        fail(f"{error}; nothing was changed")
    click.echo(f"Demo data loaded: legal entity {result.entity_code}, {result.contracts} contracts.")
    click.echo(f"Log in as {result.admin_email} with password {result.admin_password}")
