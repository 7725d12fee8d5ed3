"""Who did something, and the one way to write it down in the audit trail."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.extensions import db
from app.models import AuditEntry


USER_AGENT_MAX = 256


def request_origin() -> dict[str, str | None]:
    """Where the current request comes from, for the audit entries of signing in and of accounts: the client's
    address (behind a proxy, as PROXY_FIX_X_FOR trusts it) and its user agent (cut to 256 characters). Empty
    outside a request (the CLI, a job)."""
    from flask import has_request_context, request

    if not has_request_context():
        return {}
    return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:USER_AGENT_MAX]}


@dataclass(frozen=True)
class Actor:
    """A user, a schedule, an event or the system: whoever caused an action."""

    type: str
    label: str
    user_id: int | None = None

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls("user", user.email, user.id)

    @classmethod
    def for_schedule(cls, schedule) -> "Actor":
        return cls("schedule", f"schedule #{schedule.id} {schedule.name}")

    @classmethod
    def for_event(cls, event) -> "Actor":
        return cls("event", f"event #{event.id} {event.type}")

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls("system", label)


AUDIT_COLUMNS = ("at", "actor_type", "actor_user_id", "actor_label", "action", "subject_type", "subject_id",
                 "legal_entity_id", "billing_run_id", "details")


def audit_row(action: str, subject_type: str, subject_id: int | None, actor: Actor, *,
              legal_entity_id: int | None = None, billing_run_id: int | None = None, **details: Any) -> tuple:
    """What `record` writes, as a row for `record_many` (in AUDIT_COLUMNS order)."""
    from app.models.types import utcnow

    return (utcnow(), actor.type, actor.user_id, actor.label, action, subject_type, subject_id, legal_entity_id,
            billing_run_id, details)


def record_many(rows: list[tuple]) -> None:
    """Write many audit_row()s at once (COPY on PostgreSQL), in the current transaction; they are sealed
    into the audit chain when it commits. On SQLite the transaction must already have written (new_ids)."""
    from app.bulk import copy_rows, new_ids
    from app.chain.sealing import pending

    if rows:
        ids = new_ids(AuditEntry.__table__, len(rows))
        copy_rows(AuditEntry.__table__, ("id", *AUDIT_COLUMNS), [(i, *row) for i, row in zip(ids, rows)])
        pending("audit", ids)


def record(
    action: str,
    subject_type: str,
    subject_id: int | None,
    actor: Actor,
    *,
    legal_entity_id: int | None = None,
    billing_run_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the current session; it commits with the change it describes."""
    entry = AuditEntry(
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        legal_entity_id=legal_entity_id,
        billing_run_id=billing_run_id,
        details=details,
    )
    db.session.add(entry)
    return entry
