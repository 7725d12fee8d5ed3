"""The outbox: events written in the same transaction as the change they describe."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import JSONType, UTCDateTime, utcnow


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
