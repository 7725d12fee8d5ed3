"""Invoices, their lines, and the gapless number sequences."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.vat import CATEGORY_CODES, TaxTreatment
from app.extensions import db
from app.models.contracts import Contract
from app.models.parties import Customer, LegalEntity
from app.models.types import Money, Quantity, Rate, UnitPrice, UTCDateTime, enum_check, utcnow

INVOICE_STATUSES = ("draft", "issued", "paid", "void")


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        # The last line of defence against double billing (Lago does the same).
        UniqueConstraint("contract_id", "period_start"),
        UniqueConstraint("legal_entity_id", "number"),
        UniqueConstraint("legal_entity_id", "sequence_year", "sequence_number"),
        CheckConstraint(enum_check("status", INVOICE_STATUSES), name="status"),
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
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))  # led by the unique (contract, period)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    legal_entity: Mapped[LegalEntity] = relationship()
    customer: Mapped[Customer] = relationship()
    contract: Mapped[Contract] = relationship()
    lines: Mapped[list["InvoiceLine"]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Invoice {self.number or 'draft'} {self.period_start}>"


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

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    @property
    def treatment(self) -> TaxTreatment:
        return TaxTreatment(self.vat_category, self.tax_code, self.exemption_reason, self.exemption_reason_code,
                            self.tax_note)


class InvoiceSequence(db.Model):
    """The last number given per legal entity and year; locked while numbers are taken."""

    __tablename__ = "invoice_sequences"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
