"""Legal entities: creating and listing them."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.transactions import transactional
from app.audit import Actor, record
from app.extensions import db
from app.models import LegalEntity
from app.records import parties as p
from app.records import validation as v
from app.records.taxcodes import add_default_codes


@dataclass
class EntityInput:
    code: str
    name: str
    country: str
    currency: str
    vat_id: str | None = None
    invoice_prefix: str | None = None
    timezone: str | None = "UTC"
    locale: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    subdivision: str | None = None
    tax_number: str | None = None
    registration_id: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    payment_terms_days: int | str | None = None  # as typed on the form, or a number
    finance_email: str | None = None
    iban: str | None = None
    bic: str | None = None
    sepa_creditor_id: str | None = None
    collection_lead_days: int | str | None = None  # empty: the Payment Collection Agent's setting
    late_interest_rate: str | None = None  # percent per year on payment reminders; empty: none


def default_locale(country: str) -> str:
    """The most likely locale for a country (DE → de_DE), else en_US."""
    from babel import Locale, UnknownLocaleError

    try:
        return str(Locale.parse(f"und_{country}"))
    except (UnknownLocaleError, ValueError):
        return "en_US"


def validate_entity_input(data: EntityInput) -> dict:
    """Clean values for a legal entity, or ValidationError naming every bad field."""
    fields = v.Fields(vars(data))
    clean, errors, take = fields.clean, fields.errors, fields.take

    take("code", v.parse_code, data.code)
    take("name", v.parse_entity_name, data.name)
    take("country", p.parse_country, data.country)
    take("currency", v.parse_currency, data.currency)
    take("timezone", v.parse_timezone, data.timezone or "UTC")
    take("vat_id", p.parse_vat_id, data.vat_id)
    country = clean.get("country")
    take("tax_number", lambda s: p.parse_tax_number(s, country), data.tax_number)
    take("registration_id", lambda s: p.parse_registration_id(s, country), data.registration_id)
    p.take_address(fields, country_given=False)
    take("contact_name", p.parse_contact_name, data.contact_name)
    take("contact_email", v.parse_email, data.contact_email)
    take("contact_phone", p.parse_phone, data.contact_phone)
    take("finance_email", v.parse_email, data.finance_email)
    if v.optional(data.iban):
        take("iban", v.parse_iban, data.iban)
    else:
        clean["iban"] = None
    take("bic", v.parse_optional_bic, data.bic)
    take("sepa_creditor_id", v.parse_optional_creditor_id, data.sepa_creditor_id)
    take("collection_lead_days", v.parse_collection_lead_days, data.collection_lead_days)
    if data.invoice_prefix:
        take("invoice_prefix", v.parse_code, data.invoice_prefix)
    elif "code" in clean:
        clean["invoice_prefix"] = clean["code"]
    if data.locale:
        take("locale", v.parse_locale, data.locale)
    elif "country" in clean:
        clean["locale"] = default_locale(clean["country"])
    take("payment_terms_days", v.parse_payment_terms, data.payment_terms_days)
    take("late_interest_rate", lambda s: v.parse_late_interest_rate(s, clean.get("locale")), data.late_interest_rate)
    if errors:
        raise v.ValidationError(errors)
    return clean


@transactional
def create_legal_entity(data: EntityInput, actor: Actor | None = None) -> LegalEntity:
    clean = validate_entity_input(data)
    if db.session.scalar(select(LegalEntity.id).where(LegalEntity.code == clean["code"])) is not None:
        raise v.ValidationError({"code": f"a legal entity with code {clean['code']} already exists"})
    entity = LegalEntity(**clean)
    db.session.add(entity)
    db.session.flush()
    add_default_codes(entity)
    record("legal_entity.created", "legal_entity", entity.id, actor or Actor.system("cli"),
           legal_entity_id=entity.id, code=entity.code, name=entity.name)
    return entity


EDITABLE = ("name", "country", "currency", "vat_id", "tax_number", "registration_id", "invoice_prefix", "timezone",
            "locale", "address_line1", "address_line2", "postcode", "city", "subdivision", "contact_name",
            "contact_email", "contact_phone", "payment_terms_days", "finance_email", "iban", "bic", "sepa_creditor_id",
            "collection_lead_days", "late_interest_rate")


@transactional
def update_legal_entity(entity: LegalEntity, data: EntityInput, actor: Actor) -> dict:
    """Change an entity's settings (not its code); audited with old → new. Raises ValidationError."""
    from sqlalchemy import func

    from app.models import Invoice

    clean = validate_entity_input(data)
    clean.pop("code", None)
    changes = {f: {"old": getattr(entity, f), "new": clean[f]} for f in EDITABLE if getattr(entity, f) != clean[f]}
    if "invoice_prefix" in changes and db.session.scalar(
        select(func.count()).select_from(Invoice).where(Invoice.legal_entity_id == entity.id, Invoice.number.is_not(None))
    ):
        raise v.ValidationError({"invoice_prefix": "invoices of this entity are already numbered with "
                                 f"{entity.invoice_prefix}: the prefix cannot change"})
    for field, change in changes.items():
        setattr(entity, field, change["new"])
    if changes:
        record("legal_entity.updated", "legal_entity", entity.id, actor, legal_entity_id=entity.id,
               changes={f: {"old": str(c["old"]), "new": str(c["new"])} for f, c in changes.items()})
    return changes


def entity_input(entity: LegalEntity, **changes) -> EntityInput:
    """The entity's current settings as an EntityInput, with `changes` (field → new value) applied."""
    values = {field: getattr(entity, field) for field in ("code", *EDITABLE)}
    return EntityInput(**{**values, **changes})


def list_legal_entities() -> list[LegalEntity]:
    return list(db.session.scalars(select(LegalEntity).order_by(LegalEntity.code)))


def get_legal_entity_by_code(code: str) -> LegalEntity | None:
    return db.session.scalar(select(LegalEntity).where(LegalEntity.code == code.strip().upper()))
