"""Recurring contracts and their lines."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.periods import FREQUENCIES
from app.extensions import db
from app.models.parties import Customer, LegalEntity
from app.models.taxes import TaxCode
from app.models.types import Quantity, Rate, UnitPrice, UTCDateTime, enum_check, utcnow

CONTRACT_STATUSES = ("active", "paused", "ended")


class Contract(db.Model):
    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("legal_entity_id", "reference"),
        # The list's orders (keyset paging, migration 0024); by reference: the unique index above.
        Index("ix_contracts_list_start", "legal_entity_id", "start_date", "id"),
        CheckConstraint(enum_check("status", CONTRACT_STATUSES), name="status"),
        CheckConstraint(enum_check("frequency", FREQUENCIES), name="frequency"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_after_start"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        CheckConstraint("payment_terms_days IS NULL OR payment_terms_days >= 0", name="payment_terms"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    payment_terms_days: Mapped[int | None] = mapped_column(Integer)
    po_reference: Mapped[str | None] = mapped_column(String(100))  # BT-13, the buyer's purchase order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    legal_entity: Mapped[LegalEntity] = relationship()
    customer: Mapped[Customer] = relationship()
    lines: Mapped[list["ContractLine"]] = relationship(
        back_populates="contract", order_by="ContractLine.position", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Contract {self.reference}>"


class ContractLine(db.Model):
    __tablename__ = "contract_lines"
    __table_args__ = (
        UniqueConstraint("contract_id", "position"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        # A missing rate is allowed in storage (a draft line) and refused by billing with a reason.
        CheckConstraint("vat_rate IS NULL OR (vat_rate >= 0 AND vat_rate <= 100)", name="vat_rate_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    # The rate of the line's tax code, kept beside it (a code's rate never changes once a line uses it).
    vat_rate: Mapped[Decimal | None] = mapped_column(Rate)
    # A line from before tax codes has none: billing then implies S, or Z at 0 %.
    tax_code_id: Mapped[int | None] = mapped_column(ForeignKey("tax_codes.id"), index=True)

    contract: Mapped[Contract] = relationship(back_populates="lines")
    tax_code: Mapped[TaxCode | None] = relationship()
