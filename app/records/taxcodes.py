"""Tax codes of a legal entity: the defaults of its country, adding, retiring and deleting codes, and
finding the code a contract line is taxed with (by name, or by a bare rate as older files give it).

Each change is a unit of work (app/transactions.py) and audited with its actor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.vat import (
    CATEGORIES,
    CATEGORY_CODES,
    ZERO,
    TaxTreatment,
    code_problems,
    country_rates,
    default_codes,
    rate_code,
    standard_rate_allowed,
)
from app.extensions import db
from app.models import ContractLine, InvoiceLine, LegalEntity, TaxCode
from app.models.types import utcnow
from app.records import validation as v

CODE_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9_]{0,31}")


def treatment(code: TaxCode) -> TaxTreatment:
    return TaxTreatment(code.category, code.code, code.reason, code.reason_code, code.note)


def entity_codes(entity: LegalEntity, *, include_retired: bool = True) -> list[TaxCode]:
    query = select(TaxCode).where(TaxCode.legal_entity_id == entity.id)
    if not include_retired:
        query = query.where(TaxCode.retired_at.is_(None))
    return list(db.session.scalars(query.order_by(TaxCode.retired_at.is_not(None), TaxCode.category != "S",
                                                  TaxCode.rate.desc(), TaxCode.code)))


def get_code(entity: LegalEntity, code: str) -> TaxCode | None:
    return db.session.scalar(select(TaxCode).where(TaxCode.legal_entity_id == entity.id,
                                                   TaxCode.code == code.strip().upper()))


def add_default_codes(entity: LegalEntity) -> list[TaxCode]:
    """Give a new entity the tax codes of its country (app/billing/vat.py), in the caller's transaction."""
    codes = [TaxCode(legal_entity_id=entity.id, code=t.code, rate=t.rate, category=t.category, reason=t.reason,
                     reason_code=t.reason_code, note=t.note) for t in default_codes(entity.country)]
    db.session.add_all(codes)
    db.session.flush()
    return codes


# ------------------------------------------------------------------ changing codes
def parse_tax_code_name(value: str | None) -> str:
    code = v.required(value, "code").upper()
    if not CODE_PATTERN.fullmatch(code):
        raise v.FieldError(f"{code[:40]!r} must be 1-32 capital letters, digits or '_' (e.g. DE_VAT_19, DE_RC)")
    return code


def parse_category(value: str | None) -> str:
    category = v.required(value, "category").upper()
    if category not in CATEGORIES:
        raise v.FieldError(f"{category[:10]!r} is not an EN 16931 VAT category: use one of "
                           + ", ".join(f"{c} ({spec.name})" for c, spec in CATEGORIES.items()))
    return category


def clean_code(entity: LegalEntity, data: dict[str, str | None], locale: str | None = None) -> dict:
    """Clean values for a new tax code, or ValidationError naming every bad field; the rate in `locale` when
    given (19,45 for de_DE)."""
    fields = v.Fields(data)
    clean, errors, take = fields.clean, fields.errors, fields.take
    take("code", parse_tax_code_name)
    take("rate", lambda s: v.parse_rate(v.required(s, "rate"), locale))
    take("category", parse_category)
    take("reason", lambda s: v.parse_optional_text(s, "the exemption reason", v.ONE_LINE_TEXT_MAX))
    take("reason_code", lambda s: (v.parse_optional_text(s, "the reason code",
                                                         v.column_length(TaxCode.reason_code)) or "").upper() or None)
    take("note", lambda s: v.parse_optional_text(s, "the note", v.ONE_LINE_TEXT_MAX))
    if "category" in clean:
        for field, problem in code_problems(clean["category"], clean.get("rate"), clean.get("reason"),
                                            clean.get("reason_code")).items():
            errors.setdefault(field, problem)
    if "code" in clean and get_code(entity, clean["code"]) is not None:
        errors["code"] = f"tax code {clean['code']} exists already in {entity.code}"
    if errors:
        raise v.ValidationError(errors)
    return clean


@transactional
def add_code(entity: LegalEntity, data: dict[str, str | None], actor: Actor, locale: str | None = None) -> TaxCode:
    clean = clean_code(entity, data, locale)
    code = TaxCode(legal_entity_id=entity.id, **clean)
    db.session.add(code)
    db.session.flush()
    record("tax_code.created", "tax_code", code.id, actor, legal_entity_id=entity.id, code=code.code,
           rate=str(code.rate), category=code.category, reason=code.reason, reason_code=code.reason_code)
    return code


def lines_using(code: TaxCode) -> int:
    """Contract lines taxed with `code`, and invoice lines issued with it."""
    contract_lines = db.session.scalar(select(func.count()).select_from(ContractLine)
                                       .where(ContractLine.tax_code_id == code.id))
    invoice_lines = db.session.scalar(
        select(func.count()).select_from(InvoiceLine).join(InvoiceLine.invoice)
        .where(InvoiceLine.tax_code == code.code, InvoiceLine.invoice.has(legal_entity_id=code.legal_entity_id)))
    return contract_lines + invoice_lines


@transactional
def retire_code(code: TaxCode, actor: Actor) -> None:
    """No new line may use it; lines that do keep it (and are billed with it) until changed."""
    if code.retired:
        raise v.ValidationError({"code": f"tax code {code.code} is retired already"})
    code.retired_at = utcnow()
    record("tax_code.retired", "tax_code", code.id, actor, legal_entity_id=code.legal_entity_id, code=code.code)


@transactional
def reactivate_code(code: TaxCode, actor: Actor) -> None:
    if not code.retired:
        raise v.ValidationError({"code": f"tax code {code.code} is in use already"})
    code.retired_at = None
    record("tax_code.reactivated", "tax_code", code.id, actor, legal_entity_id=code.legal_entity_id, code=code.code)


@transactional
def delete_code(code: TaxCode, actor: Actor) -> None:
    """Only a code no contract line and no invoice has used; others are retired."""
    used = lines_using(code)
    if used:
        raise v.ValidationError({"code": f"tax code {code.code} is used by {used} contract or invoice line(s) and "
                                         "cannot be deleted: retire it instead, so no new line uses it"})
    record("tax_code.deleted", "tax_code", code.id, actor, legal_entity_id=code.legal_entity_id, code=code.code)
    db.session.delete(code)
    db.session.flush()


# ------------------------------------------------------------------ the code of a line
class TaxCodes:
    """An entity's codes, looked up by name or by a bare rate; codes a rate calls for are made on the fly
    (only at one of the country's rates). One per form or import: it caches what it read and made."""

    def __init__(self, entity: LegalEntity, actor: Actor | None = None):
        self.entity, self.actor = entity, actor or Actor.system("import")
        self._by_code = {c.code: c for c in entity_codes(entity)}

    def line_code(self, code_text: str | None, rate: Decimal | None) -> TaxCode:
        """The code of a line given its `tax_code` and/or `tax_rate`; FieldError says what is wrong."""
        code_text = v.optional(code_text)
        if code_text is not None:
            code = self._by_code.get(code_text.upper())
            if code is None:
                raise v.FieldError(f"unknown tax code {code_text[:40]!r} in {self.entity.code}: use one of "
                                   f"{self._active_names()} (Settings > Tax codes)")
            if code.retired:
                raise v.FieldError(f"tax code {code.code} is retired in {self.entity.code}: choose another one")
            if rate is not None and rate != code.rate:
                raise v.FieldError(f"tax code {code.code} has the rate {_plain(code.rate)} %, not {_plain(rate)} %: "
                                   "leave the rate empty or give the code's rate")
            return code
        if rate is None:
            raise v.FieldError("VAT rate is required: give it, or choose a tax code")
        return self.rate_code(rate)

    def rate_code(self, rate: Decimal) -> TaxCode:
        """The entity's standard-rate code at `rate` (zero rated at 0), made if the country has that rate."""
        category = "Z" if rate == ZERO else "S"
        found = [c for c in self._by_code.values() if c.category == category and c.rate == rate and not c.retired]
        if found:
            return min(found, key=lambda c: c.id or 0)
        country = self.entity.country
        if not standard_rate_allowed(country, rate):
            rates = ", ".join(f"{_plain(r)} %" for r in country_rates(country) or ())
            raise v.FieldError(f"{_plain(rate)} % is not a VAT rate of {country} ({rates}): give a tax code "
                               "instead (a reverse charge or exempt supply is a code, not a rate)")
        name = rate_code(country, rate)
        if name in self._by_code:  # the name is taken (a retired code, or another category)
            raise v.FieldError(f"tax code {name} is retired in {self.entity.code}: give another tax code")
        code = TaxCode(legal_entity_id=self.entity.id, code=name, rate=rate, category=category)
        db.session.add(code)
        db.session.flush()
        record("tax_code.created", "tax_code", code.id, self.actor, legal_entity_id=self.entity.id, code=name,
               rate=str(rate), category=category, made_for="a line given only its VAT rate")
        self._by_code[name] = code
        return code

    def _active_names(self) -> str:
        names = sorted(c.code for c in self._by_code.values() if not c.retired)
        return ", ".join(names[:12]) + (", …" if len(names) > 12 else "")


def buyer_problem(code: TaxCode, customer_vat_id: str | None, fix: str = "add it to the customer first") -> str | None:
    """Why a line with `code` cannot be billed to a customer with this VAT ID, or None."""
    if CATEGORIES[code.category].needs_buyer_vat_id and not customer_vat_id:
        return (f"tax code {code.code} (category {code.category}, {CATEGORIES[code.category].name.lower()}) needs "
                f"the customer's VAT ID: {fix}")
    return None


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass
class CodeRow:
    """A code as the settings page and `flask taxcodes list` show it."""

    code: str
    rate: str
    category: str
    reason: str | None
    reason_code: str | None
    note: str | None
    retired: bool

    @classmethod
    def of(cls, code: TaxCode) -> "CodeRow":
        return cls(code.code, _plain(code.rate), code.category, code.reason, code.reason_code, code.note,
                   code.retired)


__all__ = ["CATEGORY_CODES", "TaxCodes", "add_code", "add_default_codes", "buyer_problem", "delete_code",
           "entity_codes", "get_code", "reactivate_code", "retire_code", "treatment"]
