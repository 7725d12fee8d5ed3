"""Bank statements and their entries: the money that came in (and went out) on the entity's account,
and what the Reconciliation Agent or an accountant applied it to."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import Money, UTCDateTime, enum_check, utcnow

STATEMENT_FORMATS = ("camt053", "mt940", "csv")
ENTRY_DIRECTIONS = ("credit", "debit")
# unmatched: waits in the queue; partially_matched: some applied, the rest waits; matched: all of it applied
# (to invoices, a SEPA debit it collects, or a customer credit); not_ours: an accountant said so;
# debit_return: a returned SEPA debit (the invoice is due again); outgoing: a debit that is not a return
# (fees, payments we made): not receivables, kept for the record.
ENTRY_STATUSES = ("unmatched", "partially_matched", "matched", "not_ours", "debit_return", "outgoing")
QUEUED = ("unmatched", "partially_matched")
WAITING_CREDITS = "direction = 'credit' AND status IN ('unmatched', 'partially_matched')"  # the queue (QUEUED credits)


class BankStatement(db.Model):
    __tablename__ = "bank_statements"
    __table_args__ = (
        CheckConstraint(enum_check("format", STATEMENT_FORMATS), name="format"),
        CheckConstraint("entry_count >= 0 AND duplicate_count >= 0", name="counts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    version: Mapped[str | None] = mapped_column(String(32))
    statement_id: Mapped[str] = mapped_column(String(140))  # the bank's (camt Stmt/Id, MT940 :20:)
    sequence: Mapped[str | None] = mapped_column(String(35))  # ElctrncSeqNb, :28C:
    account_iban: Mapped[str | None] = mapped_column(String(34))
    currency: Mapped[str] = mapped_column(String(3))
    from_date: Mapped[date | None] = mapped_column(Date)
    to_date: Mapped[date | None] = mapped_column(Date)
    opening_balance: Mapped[Decimal | None] = mapped_column(Money)
    closing_balance: Mapped[Decimal | None] = mapped_column(Money)
    file_name: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer, default=0)  # new entries this import added
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)  # entries already imported before
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    entries: Mapped[list["BankEntry"]] = relationship(back_populates="statement", order_by="BankEntry.id")


class BankEntry(db.Model):
    __tablename__ = "bank_entries"
    __table_args__ = (
        # Importing the same statement twice, or overlapping ones, adds nothing.
        UniqueConstraint("legal_entity_id", "fingerprint"),
        CheckConstraint(enum_check("direction", ENTRY_DIRECTIONS), name="direction"),
        CheckConstraint(enum_check("status", ENTRY_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # Below the storage scale, as invoices' total_adds_up (SQLite stores NUMERIC as binary floating point).
        CheckConstraint("applied_amount >= 0 AND applied_amount - amount < 0.00005", name="applied_within_amount"),
        CheckConstraint("status <> 'matched' OR abs(applied_amount - amount) < 0.00005", name="matched_in_full"),
        CheckConstraint("status <> 'partially_matched' OR (applied_amount > 0 AND amount - applied_amount > 0.00005)",
                        name="partially_matched_in_part"),
        CheckConstraint("direction = 'credit' OR status IN ('debit_return', 'outgoing', 'not_ours', 'unmatched')",
                        name="debits_not_applied"),
        Index("ix_bank_entries_queue", "legal_entity_id", "status", "booking_date"),
        # The queue's orders (app/payments/bank_queue.py QUEUE_ORDER; keyset paging, migration 0024): waiting credits.
        *(Index(f"ix_bank_entries_list_{name}", "legal_entity_id", column, "id",
                postgresql_where=text(WAITING_CREDITS), sqlite_where=text(WAITING_CREDITS))
          for name, column in (("booked", "booking_date"), ("amount", "amount"))),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statements.id"), index=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"))  # led by the unique and queue index
    fingerprint: Mapped[str] = mapped_column(String(200))
    booking_date: Mapped[date] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    direction: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reversal: Mapped[bool] = mapped_column(Boolean, default=False)
    bank_reference: Mapped[str | None] = mapped_column(String(140))
    end_to_end_id: Mapped[str | None] = mapped_column(String(140), index=True)
    creditor_reference: Mapped[str | None] = mapped_column(String(140))
    remittance: Mapped[str] = mapped_column(Text, default="")
    counterparty_name: Mapped[str | None] = mapped_column(String(200))
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    counterparty_bic: Mapped[str | None] = mapped_column(String(11))
    return_reason: Mapped[str | None] = mapped_column(String(140))
    bank_transaction_code: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default="unmatched")
    applied_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # Why it was applied as it was (or why not): the Reconciliation Agent's or the accountant's words.
    match_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    statement: Mapped[BankStatement] = relationship(back_populates="entries")

    @property
    def unapplied(self) -> Decimal:
        return Decimal(self.amount) - Decimal(self.applied_amount)
