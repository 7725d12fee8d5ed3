"""Agent definitions and their schedules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.parties import LegalEntity
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

EXECUTION_MODES = ("code", "llm")
SCHEDULE_PRESETS = ("daily", "weekly", "monthly", "first_business_day", "cron")


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
    """When an agent fires for a legal entity: a cron expression read in the entity's time zone."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (CheckConstraint(enum_check("preset", SCHEDULE_PRESETS), name="preset"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent_definitions.id"), index=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(120))
    # How the schedule was entered (for the edit form), and the first-business-day filter.
    preset: Mapped[str] = mapped_column(String(24), default="cron")
    preset_params: Mapped[dict] = mapped_column(JSONType, default=dict)
    first_business_day: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id", ondelete="SET NULL"))

    agent: Mapped[AgentDefinition] = relationship()
    legal_entity: Mapped[LegalEntity] = relationship()


class ScheduleFire(db.Model):
    """One fire of a schedule for one slot (its scheduled time): a slot fires at most once."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("scheduled_job_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheduled_job_id: Mapped[int] = mapped_column(ForeignKey("scheduled_jobs.id", ondelete="CASCADE"), index=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(Text, default="")


class OrchestrationRule(db.Model):
    """Which agent runs when an event happens; admins enable, disable and add rules."""

    __tablename__ = "orchestration_rules"
    __table_args__ = (UniqueConstraint("event_type", "agent_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    agent_key: Mapped[str] = mapped_column(ForeignKey("agent_definitions.key"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
