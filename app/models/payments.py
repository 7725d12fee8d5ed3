"""Payments, collection of each invoice, and SEPA direct-debit batches."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, and_, case, func, select, text)
from sqlalchemy.orm import Mapped, column_property, deferred, mapped_column, relationship

from app.extensions import db
from app.models.invoices import Invoice
from app.models.types import Money, UTCDateTime, enum_check, utcnow

# customer_credit: settled from a customer credit (a credit note on a paid invoice), not money received
# bank_transfer: applied from a bank statement entry (`bank_entry_id`), automatically or by an accountant
PAYMENT_SOURCES = ("manual", "sepa_debit", "customer_credit", "bank_transfer")
COLLECTION_STATUSES = ("waiting", "in_batch", "retry_scheduled", "collected", "flagged", "failed")
BATCH_STATUSES = ("open", "closed")
# withdrawn: no longer due when its batch was closed (void, credited, paid, collected elsewhere); `note` says why
BATCH_ITEM_STATUSES = ("pending", "collected", "returned", "withdrawn")
SEQUENCE_TYPES = ("FRST", "RCUR")


class Payment(db.Model):
    """Money received for an invoice, or the reversal of such a payment: a counter-entry of minus its amount
    (`reverses_payment_id`, `reason`); a payment is never changed or deleted. What was paid on an invoice is
    the sum of its payments."""

    __tablename__ = "payments"
    __table_args__ = (
        # A payment is money in (positive); its reversal a counter-entry of minus its amount, with a reason.
        CheckConstraint("(reverses_payment_id IS NULL AND amount > 0) OR (reverses_payment_id IS NOT NULL AND amount < 0)",
                        name="amount_sign"),
        CheckConstraint("reverses_payment_id IS NULL OR (reason IS NOT NULL AND length(trim(reason)) > 0)",
                        name="reversal_reason"),
        CheckConstraint(enum_check("source", PAYMENT_SOURCES), name="source"),
        CheckConstraint("(source = 'customer_credit') = (customer_credit_id IS NOT NULL)", name="credit_source"),
        CheckConstraint("source <> 'bank_transfer' OR bank_entry_id IS NOT NULL", name="bank_transfer_entry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(140), default="")
    source: Mapped[str] = mapped_column(String(16), default="manual")
    sepa_batch_item_id: Mapped[int | None] = mapped_column(ForeignKey("sepa_batch_items.id"), unique=True)
    customer_credit_id: Mapped[int | None] = mapped_column(ForeignKey("customer_credits.id"), index=True)
    bank_entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entries.id"), index=True)
    # Set on a reversal: the payment it takes back (at most once).
    reverses_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Collection(db.Model):
    """How the money of one invoice is being collected, and its retries."""

    __tablename__ = "collections"
    __table_args__ = (CheckConstraint(enum_check("status", COLLECTION_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="waiting")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_on: Mapped[date | None] = mapped_column(Date)
    next_retry_on: Mapped[date | None] = mapped_column(Date, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SepaBatch(db.Model):
    __tablename__ = "sepa_batches"
    __table_args__ = (
        CheckConstraint(enum_check("status", BATCH_STATUSES), name="status"),
        Index("uq_sepa_batches_one_open_per_entity", "legal_entity_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    message_id: Mapped[str | None] = mapped_column(String(35), unique=True)  # the MsgId in the file
    collection_date: Mapped[date | None] = mapped_column(Date)
    control_sum: Mapped[Decimal | None] = mapped_column(Money)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    xml: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    items: Mapped[list["SepaBatchItem"]] = relationship(back_populates="batch", order_by="SepaBatchItem.id")


class SepaBatchItem(db.Model):
    __tablename__ = "sepa_batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "invoice_id"),
        CheckConstraint(enum_check("status", BATCH_ITEM_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(enum_check("sequence_type", SEQUENCE_TYPES), name="sequence_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("sepa_batches.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    return_reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)  # why it was withdrawn or its amount changed
    # What the file asked the bank for, set when the batch is closed (NULL while pending in an open batch).
    collection_date: Mapped[date | None] = mapped_column(Date)
    sequence_type: Mapped[str | None] = mapped_column(String(4))
    mandate_reference: Mapped[str | None] = mapped_column(String(35), index=True)
    debtor_iban: Mapped[str | None] = mapped_column(String(34))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    batch: Mapped[SepaBatch] = relationship(back_populates="items")


class CustomerCredit(db.Model):
    """What a credit note gave back beyond the amount due of its invoice (the invoice was paid), or what a
    bank transfer paid beyond what was due (an over-payment): applied to the customer's next invoices by
    the billing run, or refunded by an accountant."""

    __tablename__ = "customer_credits"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("applied_amount >= 0 AND refunded_amount >= 0", name="used_not_negative"),
        # Below the storage scale, as invoices' total_adds_up (SQLite stores NUMERIC as binary floating point).
        CheckConstraint("applied_amount + refunded_amount - amount < 0.00005", name="used_within_amount"),
        CheckConstraint("(credit_note_id IS NULL) <> (bank_entry_id IS NULL)", name="one_origin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), unique=True)
    bank_entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entries.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)
    applied_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    refund_reference: Mapped[str | None] = mapped_column(String(140))
    refunded_on: Mapped[date | None] = mapped_column(Date)
    refunded_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def origin(self) -> str:
        """What the credit came from, as the payments it settles call it."""
        if self.credit_note_id is not None:
            return f"Credit note {db.session.get(Invoice, self.credit_note_id).number}"
        return f"Over-payment, bank entry #{self.bank_entry_id}"

    @property
    def available(self) -> Decimal:
        return self.amount - self.applied_amount - self.refunded_amount


# ------------------------------------------------------------------ the status an invoice shows
PARTIALLY_PAID = "partially_paid"
SHOWN_STATUSES = ("draft", "issued", PARTIALLY_PAID, "paid", "void", "credited")
# Stored statuses stay as they are (`issued` means open to many queries); the status shown is `partially_paid`
# for an issued invoice with something paid (payments net of reversals) and something still due. Deferred:
# loaded when read, or with undefer(Invoice.display_status) for a list; usable in WHERE clauses.
_paid = (select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.invoice_id == Invoice.id)
         .correlate_except(Payment).scalar_subquery())
Invoice.display_status = deferred(column_property(
    case((and_(Invoice.is_open, _paid > 0), PARTIALLY_PAID),
         else_=Invoice.status)))
