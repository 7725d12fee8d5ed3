"""Legal entities (who bills) and customers (who is billed)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.addresses import PostalAddress
from app.extensions import db
from app.models.types import UTCDateTime, enum_check, utcnow

PAYMENT_METHODS = ("manual", "sepa_debit")


class PostalAddressColumns:
    """The structured postal address of a party (EN 16931 BG-5 / BG-8); its country is the party's
    `country` column. Read it as one value: `party.postal_address`."""

    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(100))
    subdivision: Mapped[str | None] = mapped_column(String(100))

    @property
    def postal_address(self) -> PostalAddress:
        return PostalAddress.of(self.address_line1, self.address_line2, self.postcode, self.city, self.subdivision,
                                self.country)


class LegalEntity(PostalAddressColumns, db.Model):
    __tablename__ = "legal_entities"
    __table_args__ = (
        CheckConstraint("length(country) = 2", name="country_iso"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        CheckConstraint("payment_terms_days IS NULL OR payment_terms_days >= 0", name="payment_terms"),
        CheckConstraint("collection_lead_days IS NULL OR collection_lead_days BETWEEN 1 AND 30",
                        name="collection_lead_days"),
        CheckConstraint("late_interest_rate IS NULL OR (late_interest_rate >= 0 AND late_interest_rate <= 100)",
                        name="late_interest_rate"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    vat_id: Mapped[str | None] = mapped_column(String(32))  # BT-31
    tax_number: Mapped[str | None] = mapped_column(String(32))  # BT-32
    registration_id: Mapped[str | None] = mapped_column(String(64))  # BT-30
    contact_name: Mapped[str | None] = mapped_column(String(100))  # BT-41
    contact_phone: Mapped[str | None] = mapped_column(String(40))  # BT-42
    contact_email: Mapped[str | None] = mapped_column(String(254))  # BT-43
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    invoice_prefix: Mapped[str] = mapped_column(String(16))
    # Empty: the billing agent's default applies.
    payment_terms_days: Mapped[int | None] = mapped_column(Integer, default=14)
    locale: Mapped[str] = mapped_column(String(16), default="en_US")
    finance_email: Mapped[str | None] = mapped_column(String(254))
    sepa_creditor_id: Mapped[str | None] = mapped_column(String(35))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # Days between closing a SEPA batch and the earliest collection date; empty: the Payment Collection Agent's.
    collection_lead_days: Mapped[int | None] = mapped_column(Integer)
    # Statutory interest on overdue invoices, percent per year, stated on payment reminders; empty: none.
    late_interest_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2, asdecimal=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    customers: Mapped[list["Customer"]] = relationship(back_populates="legal_entity")

    def today(self, now: datetime | None = None) -> date:
        """Today's date in the legal entity's time zone (its books' calendar day)."""
        from zoneinfo import ZoneInfo

        return (now or utcnow()).astimezone(ZoneInfo(self.timezone)).date()

    def __repr__(self) -> str:
        return f"<LegalEntity {self.code}>"


class Customer(PostalAddressColumns, db.Model):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("legal_entity_id", "name"),
        CheckConstraint(enum_check("payment_method", PAYMENT_METHODS), name="payment_method"),
        CheckConstraint(
            "payment_method <> 'sepa_debit' OR "
            "(iban IS NOT NULL AND mandate_reference IS NOT NULL AND mandate_date IS NOT NULL)",
            name="sepa_mandate",
        ),
        CheckConstraint("country IS NULL OR length(country) = 2", name="country_iso"),
        CheckConstraint("dunning_hold IS NULL OR dunning_hold IN ('paused', 'disputed')", name="dunning_hold"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    country: Mapped[str | None] = mapped_column(String(2))  # of the address (BT-55)
    vat_id: Mapped[str | None] = mapped_column(String(32))  # BT-48
    buyer_reference: Mapped[str | None] = mapped_column(String(200))  # BT-10, e.g. a Leitweg-ID
    payment_method: Mapped[str] = mapped_column(String(16), default="manual")
    iban: Mapped[str | None] = mapped_column(String(34))
    mandate_reference: Mapped[str | None] = mapped_column(String(35))
    mandate_date: Mapped[date | None] = mapped_column(Date)
    # Not reminded while set: 'paused' (e.g. a payment plan) or 'disputed'; the note says why (app/dunning).
    dunning_hold: Mapped[str | None] = mapped_column(String(16))
    dunning_hold_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    legal_entity: Mapped[LegalEntity] = relationship(back_populates="customers")

    def __repr__(self) -> str:
        return f"<Customer {self.name}>"
