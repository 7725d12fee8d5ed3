"""The outbox: events written in the same transaction as the change they describe."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        # The relay reads undispatched events oldest first. No other index: nothing queries events by
        # type, entity or run, and every index costs each event the billing run writes (migration 0004).
        Index(
            "ix_events_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    legal_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    # The billing run a chain of events started from, and how deep in the chain this event is.
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id"))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type}>"


HANDLING_STATUSES = ("pending", "done", "failed")


class EventHandling(db.Model):
    """Whether a subscribed agent has acted on an event: written by the relay when it hands the event on,
    marked done by the agent's job when it has acted. An event is done when each of its handlings is,
    not when Redis took a job: the relay's watchdog enqueues again what Redis lost (app/agents/events.py)."""

    __tablename__ = "event_handlings"
    __table_args__ = (
        UniqueConstraint("event_id", "agent_key"),
        CheckConstraint(enum_check("status", HANDLING_STATUSES), name="status"),
        CheckConstraint("enqueues >= 0", name="enqueues_not_negative"),
        # The watchdog reads the pending ones, oldest first; done ones are never read by it.
        Index("ix_event_handlings_pending", "enqueued_at",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))  # led by the unique
    agent_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # When the agent's job was last handed to Redis (NULL: handing it on failed, do it again now).
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enqueues: Mapped[int] = mapped_column(Integer, default=1)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<EventHandling event {self.event_id} {self.agent_key} {self.status}>"
