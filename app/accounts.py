"""Accounts: creating users and checking logins, with throttling of repeated failures."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.audit import Actor, record
from app.extensions import db
from app.models import User
from app.models.accounts import ROLES
from app.models.types import utcnow


class AccountError(ValueError):
    """A problem with account input a person can act on."""


@dataclass
class LoginResult:
    user: User | None
    error: str | None = None


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(email: str, role: str, password: str, actor: Actor | None = None) -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if "@" not in email:
        raise AccountError(f"{email!r} is not an e-mail address")
    if len(password) < 8:
        raise AccountError("the password must be at least 8 characters long")
    if find_user(email) is not None:
        raise AccountError(f"a user with e-mail {email} already exists")
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record("user.created", "user", user.id, actor or Actor.system("cli"), email=email, role=role)
    return user


def update_user(user: User, *, role: str, active: bool, password: str | None, actor: Actor) -> dict:
    """Change a user's role, active flag or password; audited. An admin cannot demote or disable themselves."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if actor.user_id == user.id and (role != user.role or not active):
        raise AccountError("you cannot change your own role or disable yourself: ask another admin")
    changes = {}
    if role != user.role:
        changes["role"] = {"old": user.role, "new": role}
        user.role = role
    if active != user.active:
        changes["active"] = {"old": user.active, "new": active}
        user.active = active
    if password:
        if len(password) < 8:
            raise AccountError("the password must be at least 8 characters long")
        user.set_password(password)
        user.failed_logins, user.locked_until = 0, None
        changes["password"] = {"old": "…", "new": "changed"}
    if changes:
        record("user.updated", "user", user.id, actor, email=user.email, changes=changes)
    return changes


def authenticate(email: str, password: str) -> LoginResult:
    """Check a login. After LOGIN_MAX_FAILURES failures the account is locked for a while."""
    user = find_user(email)
    generic = "E-mail or password is wrong."
    if user is None:
        return LoginResult(None, generic)
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        return LoginResult(None, f"Too many failed logins: try again in {minutes} minute(s).")
    if not user.check_password(password):
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
            user.failed_logins = 0
            record("user.locked", "user", user.id, Actor.system("login throttle"), email=user.email)
        db.session.commit()
        return LoginResult(None, generic)
    if not user.active:
        return LoginResult(None, "This account is disabled: ask an admin to enable it.")
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()
    return LoginResult(user)
