"""Agent definitions and their schedules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.parties import LegalEntity
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

EXECUTION_MODES = ("code", "llm")


class AgentDefinition(db.Model):
    __tablename__ = "agent_definitions"
    __table_args__ = (CheckConstraint(enum_check("execution_mode", EXECUTION_MODES), name="execution_mode"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    execution_mode: Mapped[str] = mapped_column(String(16), default="code")
    trigger_events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    configuration: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<AgentDefinition {self.key}>"


class ScheduledJob(db.Model):
    __tablename__ = "scheduled_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent_definitions.id"), index=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id", ondelete="SET NULL"))

    agent: Mapped[AgentDefinition] = relationship()
    legal_entity: Mapped[LegalEntity] = relationship()
