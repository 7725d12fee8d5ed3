"""The walkthrough's demo data: an admin, a legal entity, Bolt and Starship Technologies."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from app.accounts import create_user
from app.audit import Actor
from app.extensions import db
from app.models import Customer, LegalEntity, User
from app.records.entities import EntityInput, create_legal_entity, get_legal_entity_by_code
from app.records.importer import COLUMNS, import_contracts
from app.records.taxcodes import add_code

DEMO_EMAIL = "admin@arbill.example"
DEMO_PASSWORD = "arbill-demo-admin"  # published: production refuses to load the demo
DEMO_ENTITY = "DE01"
# The CSV has no address column; the invoices of the demo should still show where they go.
DEMO_ADDRESSES = {
    "Bolt": "Vana-Lõuna 15\n10134 Tallinn\nEstonia",
    "Starship Technologies": "Ahtri 12\n10151 Tallinn\nEstonia",
}


class DemoAlreadyLoaded(RuntimeError):
    pass


@dataclass
class DemoResult:
    admin_email: str
    admin_password: str
    entity_code: str
    contracts: int


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count()).select_from(User)) and not db.session.scalar(
        select(func.count()).select_from(LegalEntity)
    )


def seed_demo(today: date) -> DemoResult:
    """Create the demo data in the caller's transaction; contracts start on the 1st of `today`'s month."""
    if db.session.scalar(select(LegalEntity.id).where(LegalEntity.code == DEMO_ENTITY)) is not None:
        raise DemoAlreadyLoaded(f"the demo legal entity {DEMO_ENTITY} already exists: the demo data is loaded")
    if db.session.scalar(select(User.id).where(User.email == DEMO_EMAIL)) is not None:
        raise DemoAlreadyLoaded(f"the demo user {DEMO_EMAIL} already exists: the demo data is loaded")
    actor = Actor.system("demo seed")
    create_user(DEMO_EMAIL, "admin", DEMO_PASSWORD, actor)
    create_legal_entity(
        EntityInput(
            code=DEMO_ENTITY, name="Arbill Demo GmbH", country="DE", currency="EUR", vat_id="DE123456789",
            invoice_prefix="DE01", timezone="Europe/Berlin", locale="de_DE",
            address="Friedrichstraße 68\n10117 Berlin\nGermany", payment_terms_days=14,
            finance_email="finance@arbill.example", iban="DE02120300000000202051", bic="BYLADEM1001",
            sepa_creditor_id="DE98ZZZ09999999999",
        ),
        actor,
    )
    # The walkthrough's example rate: not one of Germany's, so the demo entity has a code for it.
    entity = get_legal_entity_by_code(DEMO_ENTITY)
    add_code(entity, {"code": "DE_VAT_19_45", "rate": "19.45", "category": "S"}, actor)
    start = today.replace(day=1).isoformat()
    rows = [
        {"entity": DEMO_ENTITY, "contract_ref": "C-1001", "customer": "Bolt", "customer_email": "ap@bolt.example",
         "description": "Arbill subscription", "quantity": "1", "unit_price": "49.00", "currency": "EUR",
         "tax_rate": "19.45", "frequency": "monthly", "start_date": start},
        {"entity": DEMO_ENTITY, "contract_ref": "C-1002", "customer": "Starship Technologies",
         "customer_email": "billing@starship.example", "description": "Arbill subscription", "quantity": "1",
         "unit_price": "49.00", "currency": "EUR", "tax_rate": "19.45", "frequency": "monthly", "start_date": start},
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    buffer.seek(0)
    result = import_contracts(buffer, actor)
    entity_id = db.session.scalar(select(LegalEntity.id).where(LegalEntity.code == DEMO_ENTITY))
    for customer in db.session.scalars(select(Customer).where(
            Customer.legal_entity_id == entity_id, Customer.name.in_(DEMO_ADDRESSES))):
        customer.billing_address = DEMO_ADDRESSES[customer.name]
    db.session.flush()
    return DemoResult(DEMO_EMAIL, DEMO_PASSWORD, DEMO_ENTITY, result.contracts)
