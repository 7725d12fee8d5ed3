"""Plain functions that build records for tests, through the same services users go through."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.extensions import db
from app.models import Contract, ContractLine, Customer, LegalEntity
from app.records.entities import EntityInput, create_legal_entity


def make_entity(code: str = "DE01", **kwargs) -> LegalEntity:
    # A seller VAT ID: without one, a standard-rated invoice breaks EN 16931 (BR-S-02, BR-CO-26) and the
    # document service refuses to make its document.
    values = dict(code=code, name=f"{code} GmbH", country="DE", currency="EUR", timezone="Europe/Berlin",
                  payment_terms_days=14, vat_id="DE123456789")
    values.update(kwargs)
    entity = create_legal_entity(EntityInput(**values))
    db.session.flush()
    return entity


def make_contract(entity: LegalEntity, reference: str, *, start: date, frequency: str = "monthly",
                  end: date | None = None, status: str = "active", currency: str = "EUR",
                  lines: list[tuple] | None = None, customer: str | None = None,
                  payment_terms_days: int | None = None) -> Contract:
    """lines: (description, quantity, unit_price, vat_rate) tuples; default one line of 49.00 at 19.45 %."""
    name = customer or f"Customer {reference}"
    cust = db.session.query(Customer).filter_by(legal_entity_id=entity.id, name=name).one_or_none()
    if cust is None:
        cust = Customer(legal_entity_id=entity.id, name=name, email=f"{reference.lower()}@example.com")
        db.session.add(cust)
        db.session.flush()
    contract = Contract(legal_entity_id=entity.id, customer_id=cust.id, reference=reference, status=status,
                        currency=currency, frequency=frequency, start_date=start, end_date=end,
                        payment_terms_days=payment_terms_days)
    for position, (description, quantity, price, rate) in enumerate(
        lines or [("Subscription", "1", "49.00", "19.45")], start=1
    ):
        contract.lines.append(ContractLine(
            position=position, description=description, quantity=Decimal(quantity), unit_price=Decimal(price),
            vat_rate=None if rate is None else Decimal(rate)))
    db.session.add(contract)
    db.session.flush()
    return contract
