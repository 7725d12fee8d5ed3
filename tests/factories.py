"""Plain functions that build records for tests, through the same services users go through."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.extensions import db
from app.audit import Actor
from app.models import Contract, ContractLine, Customer, LegalEntity, TaxCode
from app.records.entities import EntityInput, create_legal_entity
from app.records.taxcodes import add_code, get_code


# A complete postal address: the billing run refuses a customer without one.
CUSTOMER_ADDRESS = dict(address_line1="Hauptstraße 1", postcode="10115", city="Berlin", country="DE")


def make_entity(code: str = "DE01", **kwargs) -> LegalEntity:
    # A seller VAT ID: without one, a standard-rated invoice breaks EN 16931 (BR-S-02, BR-CO-26) and the
    # document service refuses to make its document.
    values = dict(code=code, name=f"{code} GmbH", country="DE", currency="EUR", timezone="Europe/Berlin",
                  payment_terms_days=14, vat_id="DE136695976", address_line1="Friedrichstraße 68", postcode="10117",
                  city="Berlin")
    values.update(kwargs)
    entity = create_legal_entity(EntityInput(**values))
    db.session.flush()
    return entity


def add_tax_code(entity: LegalEntity, code: str, rate: str, category: str = "S", **kwargs) -> TaxCode:
    """A tax code beside the country's defaults, e.g. the walkthrough's 19.45 % (not a German rate)."""
    return add_code(entity, {"code": code, "rate": rate, "category": category, **kwargs}, Actor.system("test"))


def make_contract(entity: LegalEntity, reference: str, *, start: date, frequency: str = "monthly",
                  end: date | None = None, status: str = "active", currency: str = "EUR",
                  lines: list[tuple] | None = None, customer: str | None = None,
                  payment_terms_days: int | None = None) -> Contract:
    """lines: (description, quantity, unit_price, vat_rate[, tax code]) tuples; default one line of 49.00 at 19.45 %.

    A line given a tax code (its name) takes the code's rate (give None as vat_rate); one without is a line
    from before tax codes (billed as S, or Z at 0 %)."""
    name = customer or f"Customer {reference}"
    cust = db.session.query(Customer).filter_by(legal_entity_id=entity.id, name=name).one_or_none()
    if cust is None:
        cust = Customer(legal_entity_id=entity.id, name=name, email=f"{reference.lower()}@example.com",
                        **CUSTOMER_ADDRESS)
        db.session.add(cust)
        db.session.flush()
    contract = Contract(legal_entity_id=entity.id, customer_id=cust.id, reference=reference, status=status,
                        currency=currency, frequency=frequency, start_date=start, end_date=end,
                        payment_terms_days=payment_terms_days)
    for position, (description, quantity, price, rate, *code_name) in enumerate(
        lines or [("Subscription", "1", "49.00", "19.45")], start=1
    ):
        code = get_code(entity, code_name[0]) if code_name else None
        if code_name and code is None:
            raise ValueError(f"no tax code {code_name[0]} in {entity.code}")
        contract.lines.append(ContractLine(
            position=position, description=description, quantity=Decimal(quantity), unit_price=Decimal(price),
            vat_rate=code.rate if code else None if rate is None else Decimal(rate),
            tax_code_id=code.id if code else None))
    db.session.add(contract)
    db.session.flush()
    return contract
