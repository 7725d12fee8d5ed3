"""Billing runs and their per-contract outcomes."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.parties import LegalEntity
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

RUN_STATUSES = ("pending", "running", "completed", "completed_with_errors", "failed", "cancelled")
ACTIVE_RUN_STATUSES = ("pending", "running")
RUN_TRIGGERS = ("manual", "schedule", "event", "cli")
ACTOR_TYPES = ("user", "schedule", "event", "system")
ITEM_STATUSES = ("invoiced", "not_due", "failed")


class BillingRun(db.Model):
    __tablename__ = "billing_runs"
    __table_args__ = (
        UniqueConstraint("legal_entity_id", "number"),
        UniqueConstraint("legal_entity_id", "trigger_ref"),
        Index("ix_billing_runs_list_started", "legal_entity_id", "started_at", "id"),  # the list (migration 0024)
        CheckConstraint(enum_check("status", RUN_STATUSES), name="status"),
        CheckConstraint(enum_check("trigger", RUN_TRIGGERS), name="trigger"),
        CheckConstraint(enum_check("actor_type", ACTOR_TYPES), name="actor_type"),
        CheckConstraint("contracts_processed <= contracts_total", name="progress"),
        # One run at a time per legal entity: at most one pending or running (non-dry) run.
        Index(
            "uq_billing_runs_one_active_per_entity",
            "legal_entity_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'running') AND NOT dry_run"),
            sqlite_where=text("status IN ('pending', 'running') AND NOT dry_run"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    period_label: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), default="pending")
    trigger: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200))
    # What exactly triggered the run, e.g. "event:17" or "schedule:3:2026-11-30T06:00:00+01:00";
    # unique per entity, so one trigger never starts two runs.
    trigger_ref: Mapped[str | None] = mapped_column(String(120))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # How deep in an event chain the run was started (0: not by an event); its events go one deeper.
    event_depth: Mapped[int] = mapped_column(Integer, default=0)
    # When set, only these contracts are billed ("retry failed").
    contract_ids: Mapped[list[int] | None] = mapped_column(JSONType)
    contracts_total: Mapped[int] = mapped_column(Integer, default=0)
    contracts_processed: Mapped[int] = mapped_column(Integer, default=0)
    contracts_invoiced: Mapped[int] = mapped_column(Integer, default=0)
    contracts_failed: Mapped[int] = mapped_column(Integer, default=0)
    invoices_created: Mapped[int] = mapped_column(Integer, default=0)
    # Currency code -> total as a decimal string, e.g. {"EUR": "117.06"}.
    totals: Mapped[dict] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    rq_job_id: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    legal_entity: Mapped[LegalEntity] = relationship()
    items: Mapped[list["BillingRunItem"]] = relationship(back_populates="run", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<BillingRun {self.legal_entity_id}#{self.number} {self.status}>"


class BillingRunItem(db.Model):
    __tablename__ = "billing_run_items"
    __table_args__ = (
        UniqueConstraint("billing_run_id", "contract_id"),
        CheckConstraint(enum_check("status", ITEM_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_run_id: Mapped[int] = mapped_column(ForeignKey("billing_runs.id", ondelete="CASCADE"))  # led by the unique (run, contract)
    # Not indexed: items are read by run (the unique index above), never by contract alone.
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    status: Mapped[str] = mapped_column(String(16))
    periods_billed: Mapped[int] = mapped_column(Integer, default=0)
    # Ids of the invoices created and the period starts they cover (ISO dates).
    invoice_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    periods: Mapped[list[str]] = mapped_column(JSONType, default=list)
    totals: Mapped[dict] = mapped_column(JSONType, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)

    run: Mapped[BillingRun] = relationship(back_populates="items")


class BillingRunChunk(db.Model):
    """One chunk of a billing run: its contracts, the settings it bills them with, the RQ job carrying it.

    Written before the job is enqueued, so the database knows a run's outstanding work even when
    Redis lost it; the supervisor (app/billing/supervision.py) re-queues a chunk whose job a dead
    worker abandoned or Redis lost. A chunk is done when each of its contracts has a run item.
    """

    __tablename__ = "billing_run_chunks"
    __table_args__ = (
        UniqueConstraint("billing_run_id", "first_contract_id"),
        CheckConstraint("first_contract_id <= last_contract_id AND size > 0", name="contracts"),
        CheckConstraint("requeues >= 0", name="requeues_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_run_id: Mapped[int] = mapped_column(ForeignKey("billing_runs.id", ondelete="CASCADE"))  # led by the unique
    # The run's contracts are chunked in id order, so a chunk holds every contract of the run in
    # first..last: its run items are those of the run with contract ids in that range.
    first_contract_id: Mapped[int] = mapped_column(Integer)
    last_contract_id: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    contract_ids: Mapped[list[int]] = mapped_column(JSONType)
    settings: Mapped[dict] = mapped_column(JSONType)
    # None when billed in the process that ran the run (`flask billing run --inline`): no job to look after.
    job_id: Mapped[str | None] = mapped_column(String(80))
    requeues: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
