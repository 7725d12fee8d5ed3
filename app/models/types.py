"""Column types and helpers shared by the models."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, DateTime, Numeric
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

# Amounts: up to 14 integer digits, 4 decimals (every ISO 4217 minor unit fits).
Money = Numeric(18, 4, asdecimal=True)
UnitPrice = Numeric(18, 6, asdecimal=True)
Quantity = Numeric(18, 4, asdecimal=True)
Rate = Numeric(7, 4, asdecimal=True)
# JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp (timestamptz on PostgreSQL, naive UTC text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def enum_check(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that `column` is one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


ZERO = Decimal("0")
