"""Invoice documents (the PDF/A-3 e-invoice) and their deliveries by e-mail."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import JSONType, UTCDateTime, enum_check, utcnow

DELIVERY_KINDS = ("auto", "resend")
# sending: waiting for or in an attempt; unknown: an attempt may have reached the SMTP server but its
# outcome was never recorded (a worker died mid-send): never sent again by itself, a person checks.
DELIVERY_STATUSES = ("sending", "sent", "retrying", "failed", "no_email", "unknown")
# A delivery that has not reached a final outcome yet.
DELIVERY_IN_PROGRESS = ("sending", "retrying")


class InvoiceDocument(db.Model):
    """The stored PDF (PDF/A-3b with the embedded EN 16931 XML) of a posted invoice."""

    __tablename__ = "invoice_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), unique=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The EN 16931 check's warnings when the document was made (app/documents/validation.py): a list of
    # {rule, flag, text, location}; NULL for documents made before documents were checked.
    findings: Mapped[list | None] = mapped_column(JSONType, nullable=True)


class InvoiceDelivery(db.Model):
    """One delivery of an invoice by e-mail: the automatic one (at most one per invoice) or a resend."""

    __tablename__ = "invoice_deliveries"
    __table_args__ = (
        CheckConstraint(enum_check("kind", DELIVERY_KINDS), name="kind"),
        CheckConstraint(enum_check("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempt_started_at IS NULL OR status = 'sending'", name="in_flight_is_sending"),
        Index("uq_invoice_deliveries_one_auto_per_invoice", "invoice_id", unique=True,
              postgresql_where=text("kind = 'auto'"), sqlite_where=text("kind = 'auto'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="auto")
    status: Mapped[str] = mapped_column(String(16), default="sending")
    recipient: Mapped[str | None] = mapped_column(String(254))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set (and committed) just before the message is handed to the SMTP server, cleared with the outcome:
    # while it is set, an attempt is in flight and nobody may start another.
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
