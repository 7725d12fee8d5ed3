"""Contracts: creating, editing, pausing, resuming and ending them, and their billing periods.

The field rules are the CSV importer's (app/records/validation.py). Each change is a unit of
work (app/transactions.py) and audited with its actor.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from app.transactions import transactional
from app.audit import Actor, record
from app.billing.money import InvoiceAmounts, LineInput, compute_invoice, minor_unit
from app.billing.periods import Period, due_period_count, periods_from
from app.errors import CurrencyError, LineError
from app.extensions import db
from app.locale_input import input_date, input_number
from app.models import Contract, ContractLine, Customer, Invoice, LegalEntity, TaxCode
from app.models.contracts import CONTRACT_STATUSES
from app.paging import Ordering, Sort, key
from app.records import validation as v
from app.records.customers import contains
from app.records.parties import parse_po_reference
from app.records.taxcodes import TaxCodes, buyer_problem, treatment

CONTRACT_FIELDS = ("reference", "customer_id", "currency", "frequency", "start_date", "end_date",
                   "payment_terms_days", "po_reference")
LINE_FIELDS = ("description", "quantity", "unit_price", "vat_rate", "tax_code")
# What the billed periods follow from: fixed once the contract has invoices.
FIXED_ONCE_INVOICED = {"start_date": "start date", "frequency": "frequency", "currency": "currency"}
UPCOMING_PERIODS = 6


# ------------------------------------------------------------------ cleaning the input
def clean_lines(entity: LegalEntity, lines: list[dict[str, str]], customer: Customer | None = None,
                locale: str | None = None) -> tuple[list[dict], dict[str, str]]:
    """Clean line rows; a row with every field blank is ignored. Errors are keyed `lines-N-field` (N from 1).
    Numbers are read in `locale` when given (a web form: "2,5" and "49,00" for de_DE), else with a dot.

    Each line gets its tax code: the one chosen, else the entity's standard-rate code at the rate given
    (made if the rate is one of the country's). A code that needs the buyer's VAT ID (reverse charge,
    intra-community supply) is refused for a `customer` without one.
    """
    errors: dict[str, str] = {}
    clean_rows: list[dict] = []
    parsers = {"description": v.parse_line_description,
               "quantity": lambda s: v.parse_quantity(v.required(s, "quantity"), locale),
               "unit_price": lambda s: v.parse_unit_price(v.required(s, "unit price"), locale),
               "vat_rate": lambda s: v.parse_rate(s, locale) if v.optional(s) else None}
    codes = TaxCodes(entity)
    for number, raw in enumerate(lines, start=1):
        if not any((raw.get(field) or "").strip() for field in LINE_FIELDS if field != "tax_code"):
            continue
        row: dict[str, Any] = {}
        for field, parse in parsers.items():
            try:
                row[field] = parse(raw.get(field))
            except v.FieldError as error:
                errors[f"lines-{number}-{field}"] = str(error)
        if f"lines-{number}-vat_rate" not in errors:
            field = "tax_code" if v.optional(raw.get("tax_code")) else "vat_rate"
            try:
                code = codes.line_code(raw.get("tax_code"), row.get("vat_rate"))
            except v.FieldError as error:
                errors[f"lines-{number}-{field}"] = str(error)
            else:
                row["tax_code_id"], row["vat_rate"] = code.id, code.rate
                problem = customer is not None and buyer_problem(code, customer.vat_id)
                if problem:
                    errors[f"lines-{number}-tax_code"] = problem
        clean_rows.append(row)
    if not clean_rows and not errors:
        errors["lines"] = ("a contract needs at least one line: fill in description, quantity, unit price and a tax "
                           "code or VAT rate")
    return clean_rows, errors


def clean_contract(entity: LegalEntity, data: dict[str, str], lines: list[dict[str, str]],
                   contract: Contract | None = None, locale: str | None = None) -> tuple[dict, list[dict]]:
    """The clean contract fields and lines, or ValidationError with every problem; numbers and dates in
    `locale` when given (a web form), else plain (2.5, 2026-03-31)."""
    fields = v.Fields(data)
    clean, errors, take = fields.clean, fields.errors, fields.take

    take("reference", v.parse_contract_reference)
    take("customer_id", lambda s: _customer_of(entity, s).id)
    take("currency", lambda s: v.parse_currency(v.required(s, "currency")))
    take("frequency", lambda s: v.parse_frequency(v.required(s, "frequency")))
    take("start_date", lambda s: v.parse_date(v.required(s, "start date"), locale))
    take("end_date", lambda s: v.parse_optional_date(s, locale))
    take("payment_terms_days", v.parse_payment_terms)
    take("po_reference", parse_po_reference)
    if clean.get("start_date") and clean.get("end_date") and clean["end_date"] < clean["start_date"]:
        errors["end_date"] = f"{clean['end_date']} is before start_date {clean['start_date']}"
    if "reference" in clean:
        query = select(Contract.id).where(Contract.legal_entity_id == entity.id,
                                          Contract.reference == clean["reference"])
        if contract is not None:
            query = query.where(Contract.id != contract.id)
        if db.session.scalar(query) is not None:
            errors["reference"] = f"contract {clean['reference']} already exists in {entity.code}"
    if contract is not None:
        invoiced = invoice_count(contract)
        if invoiced:
            for field, what in FIXED_ONCE_INVOICED.items():
                if field in clean and clean[field] != getattr(contract, field):
                    errors[field] = (
                        f"the {what} cannot change: contract {contract.reference} already has {invoiced} "
                        f"invoice(s), whose periods follow from it; end this contract and create a new one")
        if clean.get("end_date") and "end_date" not in errors:
            problem = end_date_problem(contract, clean["end_date"])
            if problem:
                errors["end_date"] = problem
    customer = db.session.get(Customer, clean["customer_id"]) if "customer_id" in clean else None
    clean_rows, line_errors = clean_lines(entity, lines, customer, locale)
    errors.update(line_errors)
    if errors:
        raise v.ValidationError(errors)
    return clean, clean_rows


def _customer_of(entity: LegalEntity, value: str | None) -> Customer:
    try:
        customer = db.session.get(Customer, v.parse_id(value, "customer"))
    except v.FieldError:
        customer = None
    if customer is None or customer.legal_entity_id != entity.id:
        raise v.FieldError(f"choose a customer of {entity.code} (add one under Records > Customers first)")
    return customer


# ------------------------------------------------------------------ create and edit
@transactional
def create_contract(entity: LegalEntity, data: dict[str, str], lines: list[dict[str, str]], actor: Actor,
                    locale: str | None = None) -> Contract:
    clean, rows = clean_contract(entity, data, lines, locale=locale)
    contract = Contract(legal_entity_id=entity.id, status="active", **clean)
    for position, row in enumerate(rows, start=1):
        contract.lines.append(ContractLine(position=position, **row))
    db.session.add(contract)
    db.session.flush()
    record("contract.created", "contract", contract.id, actor, legal_entity_id=entity.id,
           reference=contract.reference, customer=contract.customer.name, lines=_describe_lines(contract.lines))
    return contract


@transactional
def update_contract(contract: Contract, data: dict[str, str], lines: list[dict[str, str]],
                    actor: Actor, locale: str | None = None) -> dict[str, list]:
    """Apply the form (numbers and dates in `locale` when given); returns (and audits) the changes as
    {field: [old, new]}."""
    clean, rows = clean_contract(contract.legal_entity, data, lines, contract, locale)
    changes: dict[str, list] = {}
    for field in CONTRACT_FIELDS:
        old, new = getattr(contract, field), clean[field]
        if old != new:
            changes[field] = [_audit_value(old), _audit_value(new)]
            setattr(contract, field, new)
    old_lines = _describe_lines(contract.lines)
    # Update rows in place by position (no unique-position clash), then add or drop the rest.
    for position, row in enumerate(rows, start=1):
        if position <= len(contract.lines):
            line = contract.lines[position - 1]
            for field, value in row.items():
                if getattr(line, field) != value:
                    setattr(line, field, value)
        else:
            contract.lines.append(ContractLine(position=position, **row))
    del contract.lines[len(rows):]
    new_lines = _describe_lines(contract.lines)
    if new_lines != old_lines:
        changes["lines"] = [old_lines, new_lines]
    if changes:
        db.session.flush()
        record("contract.updated", "contract", contract.id, actor, legal_entity_id=contract.legal_entity_id,
               reference=contract.reference, changes=changes)
    return changes


def form_values(contract: Contract, locale: str | None = None) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A contract's fields and lines as the form shows them, in `locale` when given (49,00 and 31.03.2026 for
    de_DE), so that they read back."""
    data = {}
    for field in CONTRACT_FIELDS:
        value = getattr(contract, field)
        data[field] = "" if value is None else input_date(value, locale) if isinstance(value, date) else str(value)
    return data, [line_form_values(line, line.tax_code.code if line.tax_code else "", contract.currency, locale)
                  for line in contract.lines]


def line_form_values(line, tax_code: str, currency: str, locale: str | None = None) -> dict[str, str]:
    """A contract or invoice line as the line form shows it: 2,5 × 49,00 at 19,45 for de_DE (a unit price with
    at least the currency's digits)."""
    try:
        digits = minor_unit(currency)
    except CurrencyError:
        digits = 0
    return {"description": line.description, "quantity": input_number(line.quantity, locale),
            "unit_price": input_number(line.unit_price, locale, digits), "vat_rate": input_number(line.vat_rate, locale),
            "tax_code": tax_code}


def plain_number(value: Decimal | None) -> str:
    """19.4500 → 19.45, 1.0000 → 1, 49.000000 → 49: what a person typed."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def _describe_lines(lines) -> list[str]:
    return [f"{line.description}: {plain_number(line.quantity)} × {plain_number(line.unit_price)} "
            f"at {plain_number(line.vat_rate)}%" + (f" ({_code_name(line)})" if line.tax_code_id else "")
            for line in lines]


def _code_name(line: ContractLine) -> str:
    return db.session.get(TaxCode, line.tax_code_id).code  # the id is current even before a flush


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# ------------------------------------------------------------------ pause, resume, end
@transactional
def pause_contract(contract: Contract, actor: Actor) -> None:
    if contract.status != "active":
        raise v.ValidationError({"status": f"contract {contract.reference} is {contract.status}: only an active "
                                           "contract can be paused"})
    contract.status = "paused"
    record("contract.paused", "contract", contract.id, actor, legal_entity_id=contract.legal_entity_id,
           reference=contract.reference)


@transactional
def resume_contract(contract: Contract, actor: Actor) -> None:
    if contract.status == "ended":
        raise v.ValidationError({"status": f"contract {contract.reference} has ended and cannot be resumed: "
                                           "create a new contract instead"})
    if contract.status != "paused":
        raise v.ValidationError({"status": f"contract {contract.reference} is {contract.status}: only a paused "
                                           "contract can be resumed"})
    contract.status = "active"
    record("contract.resumed", "contract", contract.id, actor, legal_entity_id=contract.legal_entity_id,
           reference=contract.reference)


@transactional
def end_contract(contract: Contract, end_date: date | str | None, actor: Actor, locale: str | None = None) -> None:
    """Status 'ended' (no more billing) with an end date on or after the last billed period's start; a typed
    end date is read in `locale` when given (31.03.2026 for de_DE)."""
    if contract.status == "ended":
        raise v.ValidationError({"status": f"contract {contract.reference} has already ended"
                                           f"{' on ' + contract.end_date.isoformat() if contract.end_date else ''}"})
    if not isinstance(end_date, date):
        try:
            end_date = v.parse_date(end_date, locale)
        except v.FieldError as error:
            raise v.ValidationError({"end_date": str(error)}) from None
    problem = end_date_problem(contract, end_date)
    if problem:
        raise v.ValidationError({"end_date": problem})
    old = contract.end_date
    contract.status, contract.end_date = "ended", end_date
    record("contract.ended", "contract", contract.id, actor, legal_entity_id=contract.legal_entity_id,
           reference=contract.reference, end_date=end_date.isoformat(), previous_end_date=_audit_value(old))


def end_date_problem(contract: Contract, end_date: date) -> str | None:
    """Why `end_date` cannot end `contract`, or None."""
    if end_date < contract.start_date:
        return f"{end_date} is before the contract's start date {contract.start_date}"
    last = last_invoice(contract)
    if last is not None and end_date < last.period_start:
        return (f"{end_date} is before the start of the last billed period ({last.period_start}, invoice "
                f"{last.number or 'draft'}): choose {last.period_start} or later")
    return None


# ------------------------------------------------------------------ reading
def invoice_count(contract: Contract) -> int:
    return db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.contract_id == contract.id,
                                                                             Invoice.kind == "invoice"))


def last_invoice(contract: Contract) -> Invoice | None:
    """The effective invoice of the contract's latest billed period (credit notes and credited invoices aside)."""
    from app.billing.ledger import effective_invoices

    return db.session.scalar(select(Invoice).where(Invoice.contract_id == contract.id, effective_invoices())
                             .order_by(Invoice.period_start.desc()).limit(1))


def contract_invoices(contract: Contract, limit: int = 60) -> list[Invoice]:
    """The contract's latest invoices, newest period first."""
    return list(db.session.scalars(select(Invoice).where(Invoice.contract_id == contract.id)
                                   .order_by(Invoice.period_start.desc()).limit(limit)))


def period_amounts(contract: Contract) -> InvoiceAmounts | None:
    """What one period of the contract bills (net, VAT per rate, total), or None while a line is incomplete."""
    try:
        return compute_invoice([LineInput(line.description, line.quantity, line.unit_price, line.vat_rate,
                                          treatment(line.tax_code) if line.tax_code else None)
                                for line in contract.lines], contract.currency)
    except (LineError, CurrencyError):
        return None


@dataclass
class UpcomingPeriod:
    period: Period
    due: bool  # its start has been reached: the next billing run bills it


def upcoming_periods(contract: Contract, today: date, count: int = UPCOMING_PERIODS) -> list[UpcomingPeriod]:
    """The next `count` periods after the last billed one (from the first if none is billed)."""
    last = last_invoice(contract)
    first = 0 if last is None else due_period_count(contract.start_date, contract.frequency, last.period_start)
    return [UpcomingPeriod(p, p.start <= today)
            for p in periods_from(contract.start_date, contract.frequency, first, count, contract.end_date)]


# The orders of the contract list (app/paging.py). The next billing date is computed from the invoices, not
# stored, so the list cannot be sorted by it at scale; the start date and the reference can.
CONTRACT_ORDER = Ordering((
    Sort("reference", "Reference", key(Contract.reference, Contract.id)),
    Sort("customer", "Customer", key(Customer.name, Contract.id)),
    Sort("start", "Start", key(Contract.start_date, Contract.id), descending_first=True),
), default="reference")


def contract_query(entity: LegalEntity, search: str | None = None, status: str | None = None) -> Select:
    """The entity's contracts by reference; `search` matches the reference or the customer's name."""
    query = select(Contract).join(Customer, Contract.customer_id == Customer.id).where(
        Contract.legal_entity_id == entity.id, Customer.legal_entity_id == entity.id)  # (see invoice_query)
    search = (search or "").strip()
    if search:
        query = query.where(or_(contains(Contract.reference, search), contains(Customer.name, search)))
    if status in CONTRACT_STATUSES:
        query = query.where(Contract.status == status)
    return query.options(selectinload(Contract.customer), selectinload(Contract.lines)).order_by(
        Contract.reference, Contract.id)
