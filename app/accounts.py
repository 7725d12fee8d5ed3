"""Accounts: creating users, the password rule, roles and sessions. Signing in (passwords checked under growing
delays, the second factor) is app/signin.py; password reset by e-mail app/password_reset.py; invitations
app/invitations.py."""
from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from app.transactions import transactional
from app.audit import Actor, record, request_origin
from app.errors import AccountError, FieldError
from app.extensions import db
from app.models import EntityRole, LegalEntity, User
from app.models.accounts import ROLES
from app.records.validation import parse_email

PASSWORD_MIN_LENGTH = 12
COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common-passwords.txt"


# ------------------------------------------------------------------ the rules
def check_email(email: str) -> str:
    """The address, normalised by the one address rule (app.records.validation.parse_email)."""
    try:
        address = parse_email(email)
    except FieldError as error:
        raise AccountError(str(error)) from None
    if address is None:
        raise AccountError("the e-mail address is required")
    return address


# Runs along the keyboard and the alphabet, forwards and backwards: "123456789012", "qwertyuiop".
_SEQUENCES = ("01234567890123456789", "abcdefghijklmnopqrstuvwxyzabc", "qwertyuiopasdfghjklzxcvbnm",
              "qwertzuiopasdfghjklyxcvbnm", "azertyuiopqsdfghjklmwxcvbn", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
_SEQUENCES = _SEQUENCES + tuple(s[::-1] for s in _SEQUENCES)


@functools.cache
def _common_passwords() -> frozenset[str]:
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").split())


def check_password_rule(password: str, email: str) -> None:
    """AccountError unless the password is at least 12 characters, not blank, not the e-mail address,
    and not a common password (with or without digits and symbols around it)."""
    if not password or not password.strip():
        raise AccountError("the password cannot be blank")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AccountError(f"the password must be at least {PASSWORD_MIN_LENGTH} characters long "
                           "(a few unrelated words make a good one)")
    lowered = password.strip().lower()
    if lowered in (email.lower(), email.lower().split("@")[0]):
        raise AccountError("the password cannot be the e-mail address")
    if len(set(lowered)) < 5:
        raise AccountError("the password repeats too few different characters")
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    halves = {lowered[: len(lowered) // 2]} if lowered[: len(lowered) // 2] * 2 == lowered else set()
    if {lowered, core, *halves} & _common_passwords() or any(lowered in run for run in _SEQUENCES):
        raise AccountError("this password is one of the most common ones: choose another")


# ------------------------------------------------------------------ users
def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


@transactional
def create_user(email: str, role: str, password: str, actor: Actor | None = None,
                entity: LegalEntity | None = None) -> User:
    """A user with `role` in every legal entity of the organisation (an organisation admin for `admin`), or —
    with `entity` — only in that legal entity (more are granted with `grant_role`)."""
    return add_user(email, role, password, actor or Actor.system("cli"), entity=entity)


def add_user(email: str, role: str, password: str | None, actor: Actor, *, entity: LegalEntity | None = None,
             action: str = "user.created") -> User:
    """create_user's work; without a password (None) the account has none usable yet (an invitation's)."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    email = check_email(email)
    if password is not None:
        check_password_rule(password, email)
    if find_user(email) is not None:
        raise AccountError(f"a user with e-mail {email} already exists")
    user = User(email=email, role=None if entity else role)
    if password is not None:
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record(action, "user", user.id, actor, email=email, role=user.role, **request_origin())
    if entity is not None:
        grant_role(user, entity, role, actor)
    return user


def set_new_password(user: User, new: str, again: str | None = None) -> None:
    """The one way people set their own password (the Security page, a reset link, an invitation): typed the same
    twice, by the password rule, not the current one. Every session of the user ends. The caller audits and
    commits."""
    if again is not None and new != again:
        raise AccountError("the two new passwords differ")
    check_password_rule(new, user.email)
    if user.check_password(new):
        raise AccountError("the new password is the current one")
    user.set_password(new)
    user.end_sessions()


# ------------------------------------------------------------------ links in account e-mails
def signed_links(purpose: str) -> URLSafeTimedSerializer:
    """Signs and reads the tokens of account e-mail links (SECRET_KEY; `purpose` as the salt, so that a token made
    for one purpose is refused by every other)."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"arbill.{purpose}")


def can_make_links() -> bool:
    """Whether account e-mails can link back to Arbill here (BASE_URL set, or inside a request)."""
    return bool(current_app.config.get("BASE_URL")) or has_request_context()


def account_link(endpoint: str, **values) -> str:
    """The absolute URL of `endpoint` for an e-mail: under BASE_URL when it is set, else the request's address."""
    base = current_app.config.get("BASE_URL")
    if base:
        parts = urlsplit(base.rstrip("/"))
        adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/",
                                           url_scheme=parts.scheme or "https")
        return adapter.build(endpoint, values, force_external=True)
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    raise AccountError("set BASE_URL to the address people reach Arbill at (e.g. https://billing.example.com): "
                       "the e-mail's link needs it")


@transactional
def grant_role(user: User, entity: LegalEntity, role: str, actor: Actor) -> bool:
    """Give `user` `role` in one legal entity (replacing the role held there); audited. False: nothing changed."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    grant = db.session.scalar(select(EntityRole).where(EntityRole.user_id == user.id,
                                                       EntityRole.legal_entity_id == entity.id))
    old = grant.role if grant else None
    if old == role:
        return False
    if grant is None:
        db.session.add(EntityRole(user_id=user.id, legal_entity_id=entity.id, role=role))
    else:
        grant.role = role
    user.__dict__.pop("_grants", None)
    if old is not None:
        user.end_sessions()  # a role taken down must not live on in an open session
    record("user.role_granted", "user", user.id, actor, legal_entity_id=entity.id, email=user.email,
           entity=entity.code, role=role, previous=old, **request_origin())
    return True


@transactional
def revoke_role(user: User, entity: LegalEntity, actor: Actor) -> bool:
    """Take away the role `user` holds in one legal entity; their sessions end. False: they held none there."""
    grant = db.session.scalar(select(EntityRole).where(EntityRole.user_id == user.id,
                                                       EntityRole.legal_entity_id == entity.id))
    if grant is None:
        return False
    db.session.delete(grant)
    user.__dict__.pop("_grants", None)
    if user.current_legal_entity_id == entity.id:
        user.current_legal_entity_id = None
    user.end_sessions()
    record("user.role_revoked", "user", user.id, actor, legal_entity_id=entity.id, email=user.email,
           entity=entity.code, role=grant.role, **request_origin())
    return True


@transactional
def set_entity_roles(user: User, roles: dict[LegalEntity, str | None], actor: Actor) -> list[str]:
    """Make `user`'s role in each given legal entity the one given (None: no role there), granting and revoking
    as needed; each change audited. What changed, in words ("DE01: accountant → admin")."""
    held = dict(db.session.execute(select(EntityRole.legal_entity_id, EntityRole.role)
                                   .where(EntityRole.user_id == user.id)).tuples().all())
    for role in roles.values():
        if role is not None and role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    changes = []
    for entity, role in sorted(roles.items(), key=lambda item: item[0].code):
        old = held.get(entity.id)
        if role == old:
            continue
        if role is None:
            revoke_role(user, entity, actor)
        else:
            grant_role(user, entity, role, actor)
        changes.append(f"{entity.code}: {old or 'none'} → {role or 'none'}")
    return changes


def grants_of(user: User) -> list[tuple[str, str]]:
    """(entity code, role) of the roles granted to `user` per legal entity, by code."""
    return list(db.session.execute(
        select(LegalEntity.code, EntityRole.role).join(EntityRole, EntityRole.legal_entity_id == LegalEntity.id)
        .where(EntityRole.user_id == user.id).order_by(LegalEntity.code)).tuples())


@transactional
def update_user(user: User, *, role: str | None, active: bool, password: str | None, actor: Actor) -> dict:
    """Change a user's organisation-wide role (None or "": only their roles per legal entity), active flag or
    password; audited. An admin cannot demote or disable themselves.

    Any of these changes ends the user's sessions: a stolen cookie does not outlive them."""
    role = role or None
    if role is not None and role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if actor.user_id == user.id and (role != user.role or not active):
        raise AccountError("you cannot change your own role or disable yourself: ask another admin")
    changes = {}
    if password:
        check_password_rule(password, user.email)
    if role != user.role:
        changes["role"] = {"old": user.role, "new": role}
        user.role = role
    if active != user.active:
        changes["active"] = {"old": user.active, "new": active}
        user.active = active
    if password:
        user.set_password(password)
        user.failed_logins, user.login_delayed_until, user.last_failed_login_at = 0, None, None
        changes["password"] = {"old": "…", "new": "changed"}
    if changes:
        user.end_sessions()
        record("user.updated", "user", user.id, actor, email=user.email, changes=changes, **request_origin())
    return changes


def load_session_user(session_id: str) -> User | None:
    """The user a session or remember-me cookie names ("id:version"), if that session is still valid."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isascii() and user_id.isdigit() and version.isascii() and version.isdigit()):
        return None  # a cookie from before session versions, or a forged one
    if int(user_id) > 2**31 - 1:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or not user.active:
        return None
    return user


@transactional
def log_out(user: User, actor: Actor) -> None:
    """End every session of the user (this browser's and any copy of its cookies)."""
    user.end_sessions()
    record("user.logout", "user", user.id, actor, **request_origin())


@transactional
def switch_entity(user: User, entity: LegalEntity, actor: Actor) -> None:
    """The legal entity the user works in from now on (audited); the caller has checked they see it."""
    user.current_legal_entity_id = entity.id
    record("user.switched_entity", "user", user.id, actor, legal_entity_id=entity.id, code=entity.code)


@transactional
def record_sign_in(user: User, second_factor: str | None) -> None:
    """Audit a completed sign-in (how the second factor was passed: a code, a recovery code, enrolment, none)."""
    record("user.login", "user", user.id, Actor.for_user(user), second_factor=second_factor, **request_origin())


@transactional
def record_rate_limited(path: str, limit: str) -> None:
    """Audit that the sign-in rate limit refused requests (once a minute, not per refused request)."""
    record("signin.rate_limited", "user", None, Actor.system("sign-in rate limit"), path=path, limit=limit,
           **request_origin())
