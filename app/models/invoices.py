"""Invoices and credit notes, their lines, and the gapless number sequences (one series per kind)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (Boolean, CheckConstraint, ColumnElement, Date, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, and_, false, literal, literal_column, text)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.references import creditor_reference
from app.billing.status import OPEN_STATUSES, is_open_invoice
from app.billing.vat import CATEGORY_CODES, TaxTreatment
from app.extensions import db
from app.models.contracts import Contract
from app.models.parties import Customer, LegalEntity
from app.models.types import Money, Quantity, Rate, UnitPrice, UTCDateTime, enum_check, utcnow

INVOICE_STATUSES = ("draft", "issued", "paid", "void", "credited")
# One table for both documents (as ERPNext's returns): a credit note (UNTDID 1001 code 381) states
# positive amounts, credits the invoice `credited_invoice_id`, and is numbered in its own series.
DOCUMENT_KINDS = ("invoice", "credit_note")
# The invoice that bills a contract period: a fully credited one no longer does (the period may be billed again).
EFFECTIVE = "kind = 'invoice' AND status <> 'credited'"
# `Invoice.is_open` as an index predicate (PostgreSQL reads a one-value IN as =).
OPEN = f"status IN ({', '.join(repr(s) for s in OPEN_STATUSES)}) AND amount_due > 0"


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        # The last line of defence against double billing (Lago does the same): one effective invoice per
        # contract period; credit notes and fully credited invoices keep their period for the record.
        Index("uq_invoices_one_effective_per_period", "contract_id", "period_start", unique=True,
              postgresql_where=text(EFFECTIVE), sqlite_where=text(EFFECTIVE)),
        Index("ix_invoices_contract_id_period_start", "contract_id", "period_start"),
        # The list's orders (app/records/invoices.py INVOICE_ORDER; keyset paging, migration 0024).
        *(Index(f"ix_invoices_list_{name}", "legal_entity_id", column, "id")
          for name, column in (("period", "period_start"), ("number", "number"), ("issue_date", "issue_date"),
                               ("due_date", "due_date"), ("total", "total_amount"), ("status", "status"))),
        Index("ix_invoices_list_run", "billing_run_id", "sequence_year", "sequence_number", "id"),
        # Open invoices due an amount: the bank queue's candidates for a waiting credit (migration 0024).
        Index("ix_invoices_open_amount", "legal_entity_id", "currency", "amount_due", "due_date", "id",
              postgresql_where=text(OPEN), sqlite_where=text(OPEN)),
        # The AR aging report's window of open invoices by due date (app/reports/aging_queries.py); covering on
        # PostgreSQL, so the report reads no table row.
        Index("ix_invoices_open_due", "legal_entity_id", "due_date",
              postgresql_include=["currency", "customer_id", "amount_due", "issue_date"],
              postgresql_where=text(OPEN), sqlite_where=text(OPEN)),
        UniqueConstraint("legal_entity_id", "number"),
        UniqueConstraint("legal_entity_id", "kind", "sequence_year", "sequence_number"),
        CheckConstraint(enum_check("status", INVOICE_STATUSES), name="status"),
        CheckConstraint(enum_check("kind", DOCUMENT_KINDS), name="kind"),
        CheckConstraint("(kind = 'credit_note') = (credited_invoice_id IS NOT NULL)", name="credit_note_credits"),
        CheckConstraint("kind = 'invoice' OR (status = 'issued' AND amount_due = 0 AND credit_reason IS NOT NULL)",
                        name="credit_note_issued_nothing_due"),
        CheckConstraint("kind = 'credit_note' OR credit_reason IS NULL", name="credit_reason_on_credit_notes"),
        CheckConstraint("(status = 'draft') = (number IS NULL)", name="number_iff_posted"),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        # Written as a difference below the storage scale (0.0001): exact equality on PostgreSQL's
        # numeric, and immune to SQLite storing NUMERIC as binary floating point (21.1 + 3.89).
        CheckConstraint("abs(total_amount - (net_amount + tax_amount)) < 0.00005", name="total_adds_up"),
        CheckConstraint("amount_due >= 0 AND amount_due <= total_amount", name="amount_due_range"),
        CheckConstraint("net_amount >= 0 AND tax_amount >= 0", name="amounts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"))  # led by the unique (entity, number)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))  # led by (contract, period) indexes
    kind: Mapped[str] = mapped_column(String(16), default="invoice")
    credited_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    billing_run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    number: Mapped[str | None] = mapped_column(String(40))
    sequence_year: Mapped[int | None] = mapped_column(Integer)
    sequence_number: Mapped[int | None] = mapped_column(Integer)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    net_amount: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    amount_due: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    void_reason: Mapped[str | None] = mapped_column(Text)
    credit_reason: Mapped[str | None] = mapped_column(Text)
    # The customer disputes this invoice: no payment reminder lists it while set (app/dunning).
    disputed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    legal_entity: Mapped[LegalEntity] = relationship()
    customer: Mapped[Customer] = relationship()
    contract: Mapped[Contract] = relationship()
    lines: Mapped[list["InvoiceLine"]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    credited_invoice: Mapped["Invoice | None"] = relationship(remote_side=[id], foreign_keys=[credited_invoice_id])

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @hybrid_property
    def is_open(self) -> bool:
        """Issued and something still due (`is_open_invoice`); in a query, the same as a WHERE clause."""
        return is_open_invoice(self.status, self.amount_due)

    @is_open.inplace.expression
    @classmethod
    def _is_open_clause(cls) -> ColumnElement[bool]:
        # Status and amount are written into the SQL as constants (not parameters), so that a partial index with
        # this predicate stays usable for prepared statements too.
        return and_(cls.status.in_([literal(status, literal_execute=True) for status in OPEN_STATUSES]),
                    cls.amount_due > literal_column("0"))

    @property
    def creditor_reference(self) -> str | None:
        """The ISO 11649 RF reference a payer quotes (app/billing/references.py), compact; None for a
        draft (no number yet) and a credit note (nothing is paid against it)."""
        if self.is_credit_note or self.number is None:
            return None
        return creditor_reference(self.number)

    def __repr__(self) -> str:
        return f"<{'CreditNote' if self.is_credit_note else 'Invoice'} {self.number or 'draft'} {self.period_start}>"


class InvoiceLine(db.Model):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        UniqueConstraint("invoice_id", "position"),
        CheckConstraint("vat_rate >= 0 AND vat_rate <= 100", name="vat_rate_range"),
        CheckConstraint(enum_check("vat_category", CATEGORY_CODES), name="vat_category"),
        CheckConstraint("vat_category IN ('S', 'L', 'M') OR vat_rate = 0", name="rate_of_category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))  # led by the unique (invoice, position)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    vat_rate: Mapped[Decimal] = mapped_column(Rate)
    net_amount: Mapped[Decimal] = mapped_column(Money)
    # The tax code as it was when the invoice was made: an issued invoice never changes.
    vat_category: Mapped[str] = mapped_column(String(2), default="S")  # BT-151
    tax_code: Mapped[str | None] = mapped_column(String(32))
    exemption_reason: Mapped[str | None] = mapped_column(Text)  # BT-120
    exemption_reason_code: Mapped[str | None] = mapped_column(String(32))  # BT-121
    tax_note: Mapped[str | None] = mapped_column(Text)  # printed on the invoice
    # On a credit note made from chosen lines: the position of the invoice line it credits (once per line).
    credited_position: Mapped[int | None] = mapped_column(Integer)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    @property
    def treatment(self) -> TaxTreatment:
        return TaxTreatment(self.vat_category, self.tax_code, self.exemption_reason, self.exemption_reason_code,
                            self.tax_note)


class InvoiceSequence(db.Model):
    """The last number given per legal entity, series (invoices, credit notes) and year; taken under
    the entity's billing lock."""

    __tablename__ = "invoice_sequences"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),
                      CheckConstraint(enum_check("series", DOCUMENT_KINDS), name="series"))

    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), primary_key=True)
    series: Mapped[str] = mapped_column(String(16), primary_key=True, default="invoice")
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
