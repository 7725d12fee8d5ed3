"""Running totals of the invoices table that the AR aging report reads instead of every open invoice.

Both are maintained by database triggers on `invoices` (migration 0023), in the same transaction as the
change of the invoice, whoever makes it (billing run, payment, credit note, void, a bank import, SQL):

- `OpenBalance`: per (legal entity, currency, customer) the sum of `amount_due` and the count of the OPEN
  invoices (`Invoice.is_open`: issued and something still due);
- `DailySales`: per (legal entity, currency, issue date) the credit sales of the day: the total of the
  invoices in a sales status (`app.reports.aging.SALES_STATUSES`), less the credit notes issued that day.

A row whose invoices are all paid stays with 0 and 0. `tests/integration/test_receivables.py` proves that
both equal a full recomputation from `invoices` after billing runs, payments, credit notes and voids.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import Money


class OpenBalance(db.Model):
    __tablename__ = "open_balances"
    # No CHECK (open_invoices >= 0): PostgreSQL checks an upsert's proposed row, and the trigger's proposed row
    # carries the change (-1 when an invoice is paid), not the result; the agreement test guards the totals.

    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    open_invoices: Mapped[int] = mapped_column(Integer)


class DailySales(db.Model):
    __tablename__ = "daily_sales"

    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    issue_date: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
