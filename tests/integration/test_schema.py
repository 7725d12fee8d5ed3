"""The migrated schema is the models' schema, and the database enforces the rules itself."""
from datetime import date
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.agents.registry import default_definitions
from app.extensions import db
from app.models import AgentDefinition, Contract, Customer, Invoice, LegalEntity


def test_migrations_build_exactly_the_models_schema(db_session):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_migrations_create_the_registered_agents(db_session):
    rows = {a.key: a for a in db_session.scalars(select(AgentDefinition))}
    for definition in default_definitions():
        row = rows[definition["key"]]
        assert row.name == definition["name"]
        assert row.execution_mode == "code"
        assert row.trigger_events == definition["trigger_events"]
        assert row.configuration == definition["configuration"]


def _entity(session) -> LegalEntity:
    entity = LegalEntity(code="T01", name="T", country="DE", currency="EUR", invoice_prefix="T01", timezone="UTC")
    session.add(entity)
    session.flush()
    return entity


def _contract(session, entity) -> Contract:
    customer = Customer(legal_entity_id=entity.id, name="C")
    session.add(customer)
    session.flush()
    contract = Contract(legal_entity_id=entity.id, customer_id=customer.id, reference="R-1", currency="EUR",
                        frequency="monthly", start_date=date(2026, 1, 1))
    session.add(contract)
    session.flush()
    return contract


def _invoice(contract, **overrides) -> Invoice:
    values = dict(
        legal_entity_id=contract.legal_entity_id, customer_id=contract.customer_id, contract_id=contract.id,
        period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 15), currency="EUR", net_amount=Decimal("49.00"), tax_amount=Decimal("9.53"),
        total_amount=Decimal("58.53"), amount_due=Decimal("58.53"), status="issued", number="T01-2026-000001",
        sequence_year=2026, sequence_number=1,
    )
    values.update(overrides)
    return Invoice(**values)


def test_one_invoice_per_contract_and_period_start(db_session):
    contract = _contract(db_session, _entity(db_session))
    db_session.add(_invoice(contract))
    db_session.flush()
    db_session.add(_invoice(contract, number="T01-2026-000002", sequence_number=2))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()


def test_invoice_numbers_are_unique_per_entity(db_session):
    contract = _contract(db_session, _entity(db_session))
    db_session.add(_invoice(contract))
    db_session.add(_invoice(contract, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28), sequence_number=2))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()


@pytest.mark.parametrize(
    "overrides",
    [
        {"total_amount": Decimal("58.54"), "amount_due": Decimal("58.54")},  # total != net + VAT
        {"status": "draft"},  # a draft has no number
        {"status": "issued", "number": None, "sequence_year": None, "sequence_number": None},
        {"amount_due": Decimal("-1")},
        {"status": "lost"},
        {"due_date": date(2025, 12, 31)},
    ],
)
def test_invoice_check_constraints(db_session, overrides):
    contract = _contract(db_session, _entity(db_session))
    db_session.add(_invoice(contract, **overrides))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()


def test_sepa_customer_needs_a_mandate_in_the_database(db_session):
    entity = _entity(db_session)
    db_session.add(Customer(legal_entity_id=entity.id, name="S", payment_method="sepa_debit", iban="DE89370400440532013000"))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()


def test_contract_end_before_start_is_refused_by_the_database(db_session):
    contract = _contract(db_session, _entity(db_session))
    contract.end_date = date(2025, 1, 1)
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()
