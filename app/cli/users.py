import click
from flask.cli import AppGroup

from app.accounts import create_user, find_user, grant_role, grants_of, revoke_role
from app.audit import Actor
from app.cli.common import entity_or_fail
from app.cli.common import echo_json, fail
from app.errors import AccountError, InvitationNotSent
from app.extensions import db
from app.models import User
from app.models.accounts import ROLES

group = AppGroup("users", help="Manage the people who log in, and their roles per legal entity.")


def user_or_fail(email: str) -> User:
    user = find_user(email)
    if user is None:
        fail(f"no user with e-mail {email.strip().lower()!r}")
    return user


@group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--entity", "code", help="only in this legal entity (default: in every one; admin = organisation admin)")
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
def create(email: str, role: str, code: str | None, password: str | None) -> None:
    """Create a user: an organisation-wide role, or with --entity a role in one legal entity."""
    entity = entity_or_fail(code) if code else None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, role, password, entity=entity)
    except AccountError as error:
        fail(str(error))
    where = f"in {entity.code}" if entity else ("of the organisation" if role == "admin" else "in every legal entity")
    click.echo(f"Created {user.email}: {role} {where}")


@group.command("invite")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--entity", "code", help="only in this legal entity (default: in every one; admin = organisation admin)")
def invite(email: str, role: str, code: str | None) -> None:
    """Invite a person by e-mail: the account waits, with its role, until they set their password from the link
    (valid INVITATION_MAX_AGE_SECONDS). The link is made with BASE_URL, which must be set."""
    from app.accounts import can_make_links
    from app.invitations import invite_user, send_invitation

    if not can_make_links():
        fail("set BASE_URL to the address people reach Arbill at (e.g. https://billing.example.com): the "
             "invitation's link needs it")
    entity = entity_or_fail(code) if code else None
    actor = Actor.system("cli")
    try:
        invitation = invite_user(email, role, actor, entity=entity)
    except AccountError as error:
        fail(str(error))
    try:
        send_invitation(invitation, actor)
    except InvitationNotSent as error:
        fail(f"{error} (Settings > Users)")
    where = f"in {entity.code}" if entity else ("of the organisation" if role == "admin" else "in every legal entity")
    click.echo(f"Invited {invitation.email}: {role} {where}; the invitation e-mail is sent")


@group.command("grant")
@click.argument("email")
@click.option("--entity", "code", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
def grant(email: str, code: str, role: str) -> None:
    """Give a user a role in one legal entity (replaces the role held there)."""
    user, entity = user_or_fail(email), entity_or_fail(code)
    changed = grant_role(user, entity, role, Actor.system("cli"))
    click.echo(f"{user.email} is {role} in {entity.code}" + ("" if changed else " (already)"))


@group.command("revoke")
@click.argument("email")
@click.option("--entity", "code", required=True)
def revoke(email: str, code: str) -> None:
    """Take away the role a user holds in one legal entity; their sessions end."""
    user, entity = user_or_fail(email), entity_or_fail(code)
    if not revoke_role(user, entity, Actor.system("cli")):
        fail(f"{user.email} holds no role granted in {entity.code}"
             + (f" (their {user.role} role applies to every legal entity: change it with Settings > Users)"
                if user.role else ""))
    click.echo(f"{user.email} no longer has a role in {entity.code}")


@group.command("reset-second-factor")
@click.argument("email")
def reset_second_factor_(email: str) -> None:
    """For a user who lost their authenticator: remove their second factor and end their sessions (audited).
    An admin sets up a new one at their next sign-in; others may turn it on again on their Security page."""
    from app.signin import reset_second_factor

    user = user_or_fail(email)
    had = user.has_second_factor
    reset_second_factor(user, Actor.system("cli"))
    then = "sets up a new one at the next sign-in" if user.needs_second_factor else "may turn it on again"
    click.echo(f"{user.email}: second factor {'removed' if had else 'was not set up; sessions ended'}; {then}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """The users, their organisation-wide role and their roles per legal entity."""
    rows = [{"email": u.email, "role": u.role, "active": u.active,
             "entities": {code: role for code, role in grants_of(u)}}
            for u in db.session.scalars(db.select(User).order_by(User.email))]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        grants = ", ".join(f"{c} {role}" for c, role in r["entities"].items())
        click.echo(f"{r['email']:<36} {r['role'] or '-':<10} {grants}{'' if r['active'] else ' (disabled)'}")
