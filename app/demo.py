"""The walkthrough's demo data: an admin, a legal entity, Bolt and Starship Technologies."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from app.transactions import transactional
from app.accounts import create_user
from app.audit import Actor
from app.errors import DemoAlreadyLoaded
from app.extensions import db
from app.models import LegalEntity, User
from app.records.entities import EntityInput, create_legal_entity, get_legal_entity_by_code
from app.records.importer import COLUMNS, OPTIONAL_COLUMNS, import_contracts
from app.records.taxcodes import add_code

DEMO_EMAIL = "admin@arbill.example"
DEMO_PASSWORD = "arbill-demo-admin"  # published: production refuses to load the demo
DEMO_ENTITY = "DE01"


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


@transactional
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
            code=DEMO_ENTITY, name="Arbill Demo GmbH", country="DE", currency="EUR", vat_id="DE136695976",
            tax_number="181/815/08155", registration_id="HRB 123456 B (Amtsgericht Charlottenburg)",
            invoice_prefix="DE01", timezone="Europe/Berlin", locale="de_DE",
            address_line1="Friedrichstraße 68", postcode="10117", city="Berlin", subdivision="Berlin",
            contact_name="Accounts Receivable", contact_phone="+49 30 1234567",
            contact_email="receivables@arbill.example", payment_terms_days=14,
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
         "tax_rate": "19.45", "frequency": "monthly", "start_date": start,
         "customer_address_line1": "Vana-Lõuna 15", "customer_postcode": "10134", "customer_city": "Tallinn",
         "customer_country": "EE", "customer_vat_id": "EE102090374", "po_reference": "PO-2041"},
        {"entity": DEMO_ENTITY, "contract_ref": "C-1002", "customer": "Starship Technologies",
         "customer_email": "billing@starship.example", "description": "Arbill subscription", "quantity": "1",
         "unit_price": "49.00", "currency": "EUR", "tax_rate": "19.45", "frequency": "monthly", "start_date": start,
         "customer_address_line1": "Ahtri 12", "customer_postcode": "10151", "customer_city": "Tallinn",
         "customer_country": "EE"},
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS + OPTIONAL_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    buffer.seek(0)
    result = import_contracts(buffer, actor)
    db.session.flush()
    return DemoResult(DEMO_EMAIL, DEMO_PASSWORD, DEMO_ENTITY, result.contracts)
