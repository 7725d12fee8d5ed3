"""Invoice numbers: consecutive per legal entity and calendar year, without gaps."""
from __future__ import annotations


def format_invoice_number(prefix: str, year: int, sequence: int) -> str:
    """`{prefix}-{year}-{seq:06d}`, e.g. DE01-2026-000042."""
    if sequence < 1:
        raise ValueError(f"invoice sequence numbers start at 1, got {sequence}")
    return f"{prefix}-{year:04d}-{sequence:06d}"
