"""The command line: users, legal entities and the demo data."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.demo import DEMO_EMAIL, DEMO_PASSWORD
from app.extensions import db
from app.models import AuditEntry, Contract, Customer, LegalEntity, User


def test_users_create_with_password(app, runner):
    result = runner.invoke(args=["users", "create", "--email", "Ann@Example.com", "--role", "accountant", "--password", "long enough pass"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "ann@example.com" and user.role == "accountant" and user.check_password("long enough pass")
        assert user.password_hash != "long enough pass"


def test_users_create_prompts_for_the_password(app, runner):
    result = runner.invoke(args=["users", "create", "--email", "bob@example.com", "--role", "viewer"],
                           input="a secret pass\na secret pass\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User)).check_password("a secret pass")


def test_users_create_refuses_duplicates_and_bad_roles(app, runner):
    args = ["users", "create", "--email", "c@example.com", "--role", "admin", "--password", "long enough pass"]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=[*args[:3], "C@example.com", *args[4:]])
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(args=[*args[:4], "--role", "owner", "--password", "long enough pass"]).exit_code != 0


def test_entities_add(app, runner):
    result = runner.invoke(args=["entities", "add", "--code", "de01", "--name", "Demo GmbH", "--country", "de",
                                 "--currency", "eur", "--vat-id", "de 136 695 976", "--timezone", "Europe/Berlin",
                                 "--address-line1", "Friedrichstraße 68", "--address-line2", "Aufgang B",
                                 "--postcode", "10117", "--city", "Berlin", "--subdivision", "Berlin",
                                 "--tax-number", "181/815/08155", "--registration-id", "HRB 123456 B",
                                 "--contact-name", "Anna Schmidt", "--contact-email", "AR@demo.example",
                                 "--contact-phone", "+49 30 1234567"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert (entity.code, entity.country, entity.currency, entity.invoice_prefix, entity.locale, entity.timezone) == (
            "DE01", "DE", "EUR", "DE01", "de_DE", "Europe/Berlin")
        assert (entity.vat_id, entity.tax_number, entity.registration_id) == (
            "DE136695976", "181/815/08155", "HRB 123456 B")
        assert (entity.contact_name, entity.contact_email, entity.contact_phone) == (
            "Anna Schmidt", "ar@demo.example", "+49 30 1234567")
        assert entity.postal_address.printed_lines("DE") == ["Friedrichstraße 68", "Aufgang B", "10117 Berlin, Berlin"]


@pytest.mark.parametrize("flags, message", [
    (["--vat-id", "DE136695977"], "vat_id: 'DE136695977' is not a valid Germany VAT ID: its check digit does not match"),
    (["--vat-id", "T5835678256246"], "vat_id: 'T5835678256246' is a Japanese registration number, not a VAT ID"),
    (["--tax-number", "12"], "tax_number: '12' is not a valid Germany tax number"),
    (["--postcode", "101\t17"], "postcode: postcode contains a tab at character 4"),
    (["--city", "Berlin"], "address_line1: address line 1 is required for a postal address (given: city)"),
    (["--contact-phone", "ask Anna"], "contact_phone: phone 'ask Anna' may hold only digits"),
])
def test_entities_add_refuses_bad_party_details_and_creates_nothing(app, runner, flags, message):
    result = runner.invoke(args=["entities", "add", "--code", "X1", "--name", "X", "--country", "DE",
                                 "--currency", "EUR", *flags])
    assert result.exit_code == 1
    assert message in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LegalEntity)) == 0


def test_entities_add_refuses_bad_input_with_one_line(app, runner):
    result = runner.invoke(args=["entities", "add", "--code", "X1", "--name", "X", "--country", "DE",
                                 "--currency", "EUX", "--timezone", "Mars/Base"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "currency EUX is not an ISO 4217 currency" in lines[0] and "Mars/Base" in lines[0]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LegalEntity)) == 0


def test_entities_add_refuses_a_line_break_in_the_name(app, runner):
    result = runner.invoke(args=["entities", "add", "--code", "X1", "--name", "Demo\r\nGmbH", "--country", "DE",
                                 "--currency", "EUR", "--address-line1", "Ring 1", "--city", "Berlin"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["Error: name: name contains a line break (CR) at character 5; it must be one line of plain text"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LegalEntity)) == 0


def test_demo_seed_creates_the_walkthrough_data_once(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert DEMO_EMAIL in result.output and DEMO_PASSWORD in result.output
    with app.app_context():
        admin = db.session.scalar(select(User))
        assert admin.role == "admin" and admin.check_password(DEMO_PASSWORD)
        customers = sorted(c.name for c in db.session.scalars(select(Customer)))
        assert customers == ["Bolt", "Starship Technologies"]
        for customer in db.session.scalars(select(Customer)):  # complete parties: printed on the invoices
            assert customer.email and not customer.postal_address.missing() and customer.postal_address.postcode
        entity = db.session.scalar(select(LegalEntity))
        assert entity.vat_id and entity.tax_number and entity.contact_phone and not entity.postal_address.missing()
        for contract in db.session.scalars(select(Contract)):
            assert contract.status == "active" and contract.frequency == "monthly" and contract.currency == "EUR"
            assert contract.start_date <= date.today()  # due in the current period
            assert [(l.quantity * l.unit_price, l.vat_rate) for l in contract.lines] == [(Decimal("49.00"), Decimal("19.45"))]
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) > 0

    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 1 and "already" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contract)) == 2
    assert runner.invoke(args=["demo", "seed", "--if-empty"]).exit_code == 0
