"""The audit trail: who did what, when, to which record."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.runs import ACTOR_TYPES
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        CheckConstraint(enum_check("actor_type", ACTOR_TYPES), name="actor_type"),
        Index("ix_audit_entries_subject", "subject_type", "subject_id"),
        Index("ix_audit_entries_list_at", "legal_entity_id", "at", "id"),  # the audit log (migration 0024)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    legal_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id"), index=True)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.action} {self.subject_type}:{self.subject_id}>"
