"""Payment reminders (dunning notices) and the invoices each one lists."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.invoices import Invoice
from app.models.parties import Customer, LegalEntity
from app.models.types import Money, UTCDateTime, enum_check, utcnow

# queued: written, its e-mail not sent yet; sending: handed to the SMTP server right now (claimed, committed
# before the hand-over, so two jobs never send one reminder twice); sent; failed: `error` says why.
NOTICE_STATUSES = ("queued", "sending", "sent", "failed")
# Why a customer is not reminded (customers.dunning_hold).
HOLD_REASONS = ("paused", "disputed")


class DunningNotice(db.Model):
    """One reminder to one customer on one day, in one currency: its level is the highest of its invoices'."""

    __tablename__ = "dunning_notices"
    __table_args__ = (
        UniqueConstraint("customer_id", "as_of", "currency"),
        CheckConstraint(enum_check("status", NOTICE_STATUSES), name="status"),
        CheckConstraint("level >= 1", name="level_positive"),
        CheckConstraint("open_amount >= 0 AND fee >= 0 AND interest >= 0 AND total_amount >= 0",
                        name="money_not_negative"),
        CheckConstraint("abs(total_amount - (open_amount + fee + interest)) < 0.00005", name="total_adds_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    open_amount: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    email: Mapped[str] = mapped_column(String(254))
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_run_id: Mapped[int | None] = mapped_column(ForeignKey("agent_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    legal_entity: Mapped[LegalEntity] = relationship()
    customer: Mapped[Customer] = relationship()
    items: Mapped[list["DunningNoticeItem"]] = relationship(back_populates="notice", order_by="DunningNoticeItem.id")

    @property
    def number(self) -> str:
        """How the reminder is named on its PDF and in its file name."""
        return f"R-{self.legal_entity_id}-{self.id:06d}"


class DunningNoticeItem(db.Model):
    """An invoice on a reminder, at the level it reached: each invoice gets each level at most once."""

    __tablename__ = "dunning_notice_items"
    __table_args__ = (
        UniqueConstraint("invoice_id", "level"),
        CheckConstraint("level >= 1", name="level_positive"),
        CheckConstraint("days_past_due > 0", name="days_past_due_positive"),
        CheckConstraint("open_amount > 0 AND interest >= 0", name="money_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("dunning_notices.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))  # led by the unique (invoice, level)
    level: Mapped[int] = mapped_column(Integer)
    days_past_due: Mapped[int] = mapped_column(Integer)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)

    notice: Mapped[DunningNotice] = relationship(back_populates="items")
    invoice: Mapped[Invoice] = relationship()
