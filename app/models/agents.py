"""Agent definitions and their schedules."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.parties import LegalEntity
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

EXECUTION_MODES = ("code", "llm")
AGENT_RUN_TRIGGERS = ("manual", "schedule", "event", "cli", "test")
AGENT_RUN_STATUSES = ("queued", "running", "succeeded", "failed")
WEBHOOK_STATUSES = ("delivered", "failed", "retrying")
SCHEDULE_PRESETS = ("daily", "weekly", "monthly", "first_business_day", "cron")


class AgentDefinition(db.Model):
    """An agent as the app runs it. Built-in agents get their row from their module's spec (app/agents/builtin,
    written by `sync_definitions` after every `flask db upgrade`); custom agents are made in the app from a
    template (app/agents/templates) for one legal entity, and every change to them is a new version."""

    __tablename__ = "agent_definitions"
    __table_args__ = (
        CheckConstraint(enum_check("execution_mode", EXECUTION_MODES), name="execution_mode"),
        CheckConstraint("(custom AND template IS NOT NULL AND legal_entity_id IS NOT NULL) OR "
                        "(NOT custom AND template IS NULL AND legal_entity_id IS NULL)", name="custom_has_template"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

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
    # Custom agents: the template they were made from and the legal entity they work for.
    custom: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    template: Mapped[str | None] = mapped_column(String(64))
    legal_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    # (who made it is its version 1: no reference to users here, so emptying users never empties the agents)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    legal_entity: Mapped[LegalEntity | None] = relationship()

    def __repr__(self) -> str:
        return f"<AgentDefinition {self.key}>"


class AgentVersion(db.Model):
    """One saved state of a custom agent: who changed what, when (version 1 is its creation)."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent_definitions.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    trigger_events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    configuration: Mapped[dict] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")


class AgentRun(db.Model):
    """One run of an agent for a legal entity: from its Run button, a schedule, the CLI or a test.
    A billing agent's run points at the billing run it started (which has its own record)."""

    __tablename__ = "agent_runs"
    __table_args__ = (
        CheckConstraint(enum_check("trigger", AGENT_RUN_TRIGGERS), name="trigger"),
        CheckConstraint(enum_check("status", AGENT_RUN_STATUSES), name="status"),
        Index("ix_agent_runs_agent_id_created_at", "agent_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent_definitions.id", ondelete="CASCADE"))
    legal_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # Who asked for it, as the audit names them (a user, a schedule, the CLI).
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    requested_by_type: Mapped[str] = mapped_column(String(16), default="system")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    as_of: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    summary: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id", ondelete="SET NULL"))
    job_id: Mapped[str | None] = mapped_column(String(80))

    agent: Mapped[AgentDefinition] = relationship()
    legal_entity: Mapped[LegalEntity | None] = relationship()


class WebhookDelivery(db.Model):
    """One attempt to POST an event to a webhook agent's URL, with the answer (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(enum_check("status", WEBHOOK_STATUSES), name="status"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        UniqueConstraint("agent_id", "delivery_key", "attempt"),
        Index("ix_webhook_deliveries_agent_id_created_at", "agent_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent_definitions.id", ondelete="CASCADE"))
    # What is delivered: "event:<id>" or "test:<agent run id>"; attempts of one delivery share it.
    delivery_key: Mapped[str] = mapped_column(String(80))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


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
    agent_run_id: Mapped[int | None] = mapped_column(ForeignKey("agent_runs.id", ondelete="SET NULL"))
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
