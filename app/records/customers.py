"""Customers: creating, editing and finding them, with the same field rules as the CSV importer.

Each change is a unit of work (app/transactions.py) and audited with its actor.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import undefer

from app.transactions import transactional
from app.audit import Actor, record
from app.extensions import db
from app.locale_input import input_date
from app.billing.vat import CATEGORIES
from app.models import Contract, ContractLine, Customer, Invoice, LegalEntity, TaxCode
from app.paging import Ordering, Sort, key
from app.records import parties as p
from app.records import validation as v

FIELDS = ("name", "email", *p.ADDRESS_FIELDS, "country", "vat_id", "buyer_reference", "payment_method", "iban",
          "mandate_reference", "mandate_date")
LABELS = {"name": "name", "email": "e-mail", **p.ADDRESS_LABELS, "vat_id": "VAT ID",
          "buyer_reference": "buyer reference", "payment_method": "payment method", "iban": "IBAN",
          "mandate_reference": "mandate reference", "mandate_date": "mandate date"}


def clean_customer(entity: LegalEntity, data: dict[str, str], customer: Customer | None = None,
                   locale: str | None = None) -> dict:
    """The clean values of a customer form, or ValidationError with every problem ({field: message}). The mandate
    date is read in `locale` when given (a web form: 31.03.2026 for de_DE), else as YYYY-MM-DD."""
    fields = v.Fields(data)
    clean, errors, take = fields.clean, fields.errors, fields.take

    take("name", v.parse_customer_name)
    take("email", v.parse_customer_email)
    p.take_address(fields)
    take("vat_id", p.parse_vat_id)
    take("buyer_reference", p.parse_buyer_reference)
    if "email" in clean and "email" not in errors:
        problem = p.xrechnung_problem(clean.get("buyer_reference"), clean["email"])
        if problem:
            errors["email"] = problem
    try:
        clean.update(v.parse_payment_details({key: data.get(key) for key in
                                              ("payment_method", "iban", "mandate_reference", "mandate_date")},
                                             today=entity.today(), locale=locale))
    except v.ValidationError as error:
        errors.update(error.errors)
    if customer is not None and "vat_id" in clean and not clean["vat_id"]:
        needing = _codes_needing_vat_id(customer)
        if needing:
            errors["vat_id"] = (f"contract {needing[0]} bills this customer with tax code {needing[1]} (category "
                                f"{needing[2]}), which needs the customer's VAT ID: change those lines first")
    if "name" in clean:
        query = select(Customer.id).where(Customer.legal_entity_id == entity.id, Customer.name == clean["name"])
        if customer is not None:
            query = query.where(Customer.id != customer.id)
        if db.session.scalar(query) is not None:
            errors["name"] = f"a customer named {clean['name']} already exists in {entity.code}"
    if errors:
        raise v.ValidationError(errors)
    return clean


def _codes_needing_vat_id(customer: Customer) -> tuple[str, str, str] | None:
    """(contract reference, tax code, category) of a line of a contract still billed that needs the buyer's VAT ID."""
    categories = [code for code, spec in CATEGORIES.items() if spec.needs_buyer_vat_id]
    return db.session.execute(
        select(Contract.reference, TaxCode.code, TaxCode.category)
        .join(ContractLine, ContractLine.contract_id == Contract.id)
        .join(TaxCode, TaxCode.id == ContractLine.tax_code_id)
        .where(Contract.customer_id == customer.id, Contract.status != "ended", TaxCode.category.in_(categories))
        .limit(1)).first()


@transactional
def create_customer(entity: LegalEntity, data: dict[str, str], actor: Actor, locale: str | None = None) -> Customer:
    clean = clean_customer(entity, data, locale=locale)
    customer = Customer(legal_entity_id=entity.id, **clean)
    db.session.add(customer)
    db.session.flush()
    record("customer.created", "customer", customer.id, actor, legal_entity_id=entity.id,
           name=customer.name, payment_method=customer.payment_method)
    return customer


@transactional
def update_customer(customer: Customer, data: dict[str, str], actor: Actor,
                    locale: str | None = None) -> dict[str, list]:
    """Apply the form (its date in `locale` when given); returns (and audits) the changes as {field: [old, new]}."""
    clean = clean_customer(customer.legal_entity, data, customer, locale)
    changes: dict[str, list] = {}
    for field in FIELDS:
        old, new = getattr(customer, field), clean[field]
        if old != new:
            changes[field] = [_audit_value(field, old), _audit_value(field, new)]
            setattr(customer, field, new)
    if changes:
        db.session.flush()
        record("customer.updated", "customer", customer.id, actor, legal_entity_id=customer.legal_entity_id,
               name=customer.name, changes=changes)
    return changes


def form_values(customer: Customer, locale: str | None = None) -> dict[str, str]:
    """A customer's fields as the form shows them: the mandate date in `locale` when given (31.03.2026 for de_DE),
    else as YYYY-MM-DD."""
    values = {}
    for field in FIELDS:
        value = getattr(customer, field)
        values[field] = input_date(value, locale) if isinstance(value, date) else (value or "")
    return values


def _audit_value(field: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if field == "iban":  # the audit trail names the account without repeating it in full
        return f"…{value[-4:]}"
    return value


# ------------------------------------------------------------------ finding customers
def contains(column, text: str):
    """`column` contains `text`, case-insensitive, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


CUSTOMER_ORDER = Ordering((Sort("name", "Name", key(Customer.name, Customer.id)),), default="name")


def customer_query(entity: LegalEntity, search: str | None = None) -> Select:
    """The entity's customers by name, optionally those whose name or e-mail contains `search`."""
    query = select(Customer).where(Customer.legal_entity_id == entity.id)
    search = (search or "").strip()
    if search:
        query = query.where(or_(contains(Customer.name, search), contains(Customer.email, search)))
    return query.order_by(Customer.name, Customer.id)


def find_customer(entity: LegalEntity, name: str) -> Customer:
    """The entity's customer called `name` (exactly, else ignoring case); ValidationError when none or several."""
    name = (name or "").strip()
    exact = db.session.scalar(select(Customer).where(Customer.legal_entity_id == entity.id, Customer.name == name))
    if exact is not None:
        return exact
    matches = list(db.session.scalars(select(Customer).where(Customer.legal_entity_id == entity.id,
                                                             func.lower(Customer.name) == name.lower())
                                      .order_by(Customer.name).limit(5)))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise v.ValidationError({"name": f"{name!r} matches several customers of {entity.code} "
                                         f"({', '.join(c.name for c in matches)}): give the name exactly"})
    raise v.ValidationError({"name": f"{entity.code} has no customer named {name!r} "
                                     f"(see `flask customers list --entity {entity.code}`)"})


def entity_customers(entity: LegalEntity) -> list[Customer]:
    return list(db.session.scalars(customer_query(entity)))


FILTER_CHOICES = 500  # customers a list's filter drop-down offers: beyond, a page would carry thousands of options


def customer_choices(entity: LegalEntity, selected: int | None = None, limit: int = FILTER_CHOICES
                     ) -> tuple[list, bool]:
    """(id, name) rows for a filter's drop-down: the first `limit` customers by name and the `selected` one, and
    whether there are more (then a person filters from the customer's page: "All invoices of …")."""
    rows = list(db.session.execute(select(Customer.id, Customer.name).where(Customer.legal_entity_id == entity.id)
                                   .order_by(Customer.name, Customer.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if selected and all(row.id != selected for row in rows):
        rows += list(db.session.execute(select(Customer.id, Customer.name).where(
            Customer.legal_entity_id == entity.id, Customer.id == selected)))
    return rows, more


def customer_contracts(customer: Customer) -> list[Contract]:
    return list(db.session.scalars(
        select(Contract).where(Contract.customer_id == customer.id).order_by(Contract.reference)))


def customer_invoices(customer: Customer, limit: int = 100) -> list[Invoice]:
    return list(db.session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id).options(undefer(Invoice.display_status))
        .order_by(Invoice.period_start.desc(), Invoice.id.desc()).limit(limit)))
