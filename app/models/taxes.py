"""Tax codes: per legal entity, a rate with its EN 16931 VAT category and exemption reason."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.billing.vat import CATEGORY_CODES
from app.extensions import db
from app.models.types import Rate, UTCDateTime, enum_check, utcnow


class TaxCode(db.Model):
    """What a contract line is taxed with. Rate, category and reason are fixed once a line uses the code
    (issued invoices copy them); a code is retired, not deleted, when it is no longer to be used."""

    __tablename__ = "tax_codes"
    __table_args__ = (
        UniqueConstraint("legal_entity_id", "code"),
        CheckConstraint(enum_check("category", CATEGORY_CODES), name="category"),
        CheckConstraint("rate >= 0 AND rate <= 100", name="rate_range"),
        # BR-S-05, BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05, BR-O-05: zero for every category but S, L, M.
        CheckConstraint("category IN ('S', 'L', 'M') OR rate = 0", name="rate_of_category"),
        CheckConstraint("category <> 'S' OR rate > 0", name="standard_rate_positive"),
        # BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10: these categories state why no VAT is charged.
        CheckConstraint("category NOT IN ('E', 'AE', 'K', 'G', 'O') OR reason IS NOT NULL OR reason_code IS NOT NULL",
                        name="exemption_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    rate: Mapped[Decimal] = mapped_column(Rate)
    category: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str | None] = mapped_column(Text)  # BT-120
    reason_code: Mapped[str | None] = mapped_column(String(32))  # BT-121
    note: Mapped[str | None] = mapped_column(Text)  # the wording printed on the invoice
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    def __repr__(self) -> str:
        return f"<TaxCode {self.code}>"
