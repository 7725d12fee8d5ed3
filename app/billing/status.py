"""What an invoice's status means, pure: the one definition of an open invoice.

`Invoice.is_open` (app/models/invoices.py) says it of an invoice and, in a query, as a WHERE clause; plain-value
code (bank matching, CSV rows) calls `is_open_invoice`.
"""
from __future__ import annotations

from decimal import Decimal

OPEN_STATUSES = ("issued",)  # posted, and not paid, voided or credited


def is_open_invoice(status: str, amount_due: Decimal) -> bool:
    """Issued and something still due."""
    return status in OPEN_STATUSES and amount_due > 0
