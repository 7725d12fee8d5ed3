"""Document numbers: consecutive per legal entity, series and calendar year, without gaps."""
from __future__ import annotations


def format_invoice_number(prefix: str, year: int, sequence: int) -> str:
    """`{prefix}-{year}-{seq:06d}`, e.g. DE01-2026-000042."""
    if sequence < 1:
        raise ValueError(f"invoice sequence numbers start at 1, got {sequence}")
    return f"{prefix}-{year:04d}-{sequence:06d}"


def format_credit_note_number(prefix: str, year: int, sequence: int) -> str:
    """`{prefix}-CN-{year}-{seq:06d}`, e.g. DE01-CN-2026-000003: the credit notes' own series."""
    if sequence < 1:
        raise ValueError(f"credit note sequence numbers start at 1, got {sequence}")
    return f"{prefix}-CN-{year:04d}-{sequence:06d}"
