"""The outbox writer: events go into the `events` table in the same transaction as the change they describe.

The lowest layer above the models: services emit here and commit; the relay (app/agents/events.py)
hands committed events to the agents that subscribe to them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from app.bulk import copy_rows, row_encoder
from app.models import Event
from app.models.types import utcnow

EVENT_COLUMNS = ("type", "payload", "legal_entity_id", "billing_run_id", "depth", "created_at")


def event_row(type_: str, payload: dict[str, Any], *, legal_entity_id: int | None = None,
              billing_run_id: int | None = None, depth: int = 0,
              created_at: datetime | None = None) -> tuple[Any, ...]:
    """A row for the outbox, in EVENT_COLUMNS order (for emit_many)."""
    return (type_, payload, legal_entity_id, billing_run_id, depth, created_at or utcnow())


def emit(type_: str, payload: dict[str, Any], **kwargs: Any) -> None:
    """Add one event to the outbox in the current transaction."""
    emit_many([event_row(type_, payload, **kwargs)])


def emit_many(rows: list[Sequence[Any]], *, encoded: bool = False) -> None:
    """Add event_row()s to the outbox in the current transaction (COPY on PostgreSQL); `encoded`:
    rows made by event_encoder() (bulk.row_encoder)."""
    if rows:
        copy_rows(Event.__table__, EVENT_COLUMNS, rows, encoded=encoded)


def event_encoder() -> Callable[[Sequence[Any]], list[Any]]:
    """Encodes event_row()s ahead of emit_many(..., encoded=True), e.g. before taking a lock."""
    return row_encoder(Event.__table__, EVENT_COLUMNS)
