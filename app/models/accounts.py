"""People who log in."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, validates
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.types import UTCDateTime, enum_check, utcnow

ROLES = ("admin", "accountant", "viewer")
# What each role may do, highest first: a role may do everything the roles after it may.
ROLE_RANK = {"viewer": 0, "accountant": 1, "admin": 2}


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(enum_check("role", ROLES), name="role"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("failed_logins >= 0", name="failed_logins_not_negative"),
        CheckConstraint("totp_enabled_at IS NULL OR totp_secret IS NOT NULL", name="totp_enabled_has_secret"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # NULL: no usable password yet (an invited user who has not accepted: app/invitations.py).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # What the person calls themselves (given when accepting an invitation); optional.
    name: Mapped[str | None] = mapped_column(String(120))
    # The role in every legal entity of the organisation (an organisation admin manages entities and people);
    # NULL: only the roles granted per legal entity (`entity_roles`).
    role: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Sign-in attempts since the last success that were not (yet) proven right; decays after a quiet period.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # No sign-in attempt (password or second factor) is checked before then: a delay that grows with the
    # failures (app/signin.py), never a lock an attacker could hold.
    login_delayed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The second factor (TOTP, RFC 6238): a secret being enrolled has no totp_enabled_at yet; the last time
    # step a code was accepted for, so that a code cannot be used twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # In the session and the remember-me cookie; bumped on password change, logout, role change and
    # disabling, which ends every session the user had.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    current_legal_entity_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("legal_entities.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("email")
    def _normalize_email(self, _key: str, value: str) -> str:
        return value.strip().lower()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return self.password_hash is not None and check_password_hash(self.password_hash, password)

    @property
    def has_password(self) -> bool:
        """False for an invited user who has not accepted yet: nobody can sign in as them."""
        return self.password_hash is not None

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember-me cookie: id and session version."""
        return f"{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """Every session and remember-me cookie of this user stops working (the caller commits)."""
        self.session_version = (self.session_version or 1) + 1

    @property
    def has_second_factor(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def needs_second_factor(self) -> bool:
        """Admins (of the organisation or of any legal entity) must sign in with a second factor."""
        return self.role == "admin" or "admin" in self.entity_grants().values()

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive users cannot log in
        return self.active

    # The legal entity the request works on (set by the web layer for each request): what `can` asks about.
    working_entity_id = None

    @property
    def is_org_admin(self) -> bool:
        """Manages legal entities, people, agents and the job queues; admin in every legal entity."""
        return self.role == "admin"

    def entity_grants(self) -> dict[int, str]:
        """Legal entity id → the role granted there (read once per request)."""
        cached = self.__dict__.get("_grants")
        if cached is None:
            from app.extensions import db

            cached = dict(db.session.execute(select(EntityRole.legal_entity_id, EntityRole.role)
                                             .where(EntityRole.user_id == self.id)).tuples().all())
            self.__dict__["_grants"] = cached
        return cached

    def role_in(self, entity_id: int | None) -> str | None:
        """The user's role in a legal entity: the higher of the organisation role and the role granted there."""
        roles = [r for r in (self.role, self.entity_grants().get(entity_id) if entity_id else None) if r]
        return max(roles, key=ROLE_RANK.__getitem__) if roles else None

    def sees_entity(self, entity_id: int | None) -> bool:
        return self.role_in(entity_id) is not None

    def visible_entity_ids(self) -> set[int] | None:
        """The legal entities this user may see; None: all of them (an organisation-wide role)."""
        return None if self.role else set(self.entity_grants())

    def can(self, role: str, entity_id: int | None = None) -> bool:
        """True when this user's role in the legal entity (default: the one the request works on) is `role` or
        above it."""
        held = self.role_in(entity_id if entity_id is not None else self.working_entity_id)
        return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class EntityRole(db.Model):
    """A user's role in one legal entity (viewer, accountant or admin of that entity)."""

    __tablename__ = "entity_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "legal_entity_id"),
        CheckConstraint(enum_check("role", ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # led by the unique
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecoveryCode(db.Model):
    """A single-use code that stands in for the second factor; only its SHA-256 is kept (80 random bits)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # led by the unique
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invitation(db.Model):
    """An e-mail invitation to an account made by an admin (app/invitations.py). The account exists from the start,
    with its roles and no password; accepting sets the password. Withdrawing deletes the never-used account and keeps
    this row (user_id NULL) so that its link says "withdrawn". `sends` counts the e-mails that went out: a link
    carries the count it was sent with, so a Resend retires the links sent before it."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("sends >= 0", name="sends_not_negative"),
        CheckConstraint("accepted_at IS NULL OR withdrawn_at IS NULL", name="accepted_or_withdrawn"),
        CheckConstraint("user_id IS NOT NULL OR withdrawn_at IS NOT NULL", name="open_has_account"),
        CheckConstraint("sent_at IS NOT NULL OR sends = 0", name="sent_when_counted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One invitation per account (withdrawn ones have none).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The last e-mail that reached the SMTP server (NULL: none did yet).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.withdrawn_at is None
