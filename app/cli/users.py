import click
from flask.cli import AppGroup

from app.accounts import AccountError, create_user
from app.cli.common import fail
from app.extensions import db
from app.models.accounts import ROLES

group = AppGroup("users", help="Manage the people who log in.")


@group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
def create(email: str, role: str, password: str | None) -> None:
    """Create a user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, role, password)
    except AccountError as error:
        fail(str(error))
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}")
