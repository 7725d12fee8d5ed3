"""Dunning pages: the preview, the hold and dispute forms, the reminders on the customer and invoice pages, the
reminder PDF, and the legal entity's statutory interest rate."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.dunning import service
from app.extensions import db
from app.models import AuditEntry, Customer, Invoice, LegalEntity
from tests.factories import make_contract, make_entity
from tests.web.test_records_invoices import run_inline as bill

START = date.today() - timedelta(days=60)
DUE = START + timedelta(days=14)


@pytest.fixture
def world(app):
    """DE01 (en_US) billed Bolt and Cargo one annual invoice each, 46 days past due today."""
    with app.app_context():
        entity = make_entity(locale="en_US", iban="DE89370400440532013000")
        make_contract(entity, "C-1", start=START, frequency="annual", customer="Bolt")
        make_contract(entity, "C-2", start=START, frequency="annual", customer="Cargo")
        db.session.commit()
        bill(entity, START)
        invoices = {i.customer.name: (i.id, i.customer_id, i.number) for i in db.session.scalars(select(Invoice))}
        assert len(invoices) == 2
        return invoices


def test_the_preview_lists_who_gets_which_level(client_as, world):
    html = client_as("viewer").get(f"/dunning?as_of={(DUE + timedelta(days=7)).isoformat()}").get_data(as_text=True)
    assert "2 reminder(s) due" in html and "Bolt" in html and "Cargo" in html
    assert world["Bolt"][2] in html and "Payment reminder" in html and "€58.53" in html
    html = client_as("viewer").get(f"/dunning?as_of={(DUE + timedelta(days=6)).isoformat()}").get_data(as_text=True)
    assert "Nobody gets a reminder on this day" in html
    bad = client_as("viewer").get("/dunning?as_of=31.02.2026").get_data(as_text=True)
    assert "As-of date:" in bad


def test_hold_and_release_a_customer_from_its_page(client_as, world, app):
    _invoice_id, customer_id, _number = world["Bolt"]
    accountant = client_as("accountant")
    assert "Hold reminders" in accountant.get(f"/customers/{customer_id}").get_data(as_text=True)
    response = accountant.post(f"/dunning/customers/{customer_id}/hold", data={"reason": "paused", "note": "plan"})
    assert response.status_code == 302
    page = accountant.get(f"/customers/{customer_id}").get_data(as_text=True)
    assert "on hold (paused)" in page and "plan" in page
    html = accountant.get(f"/dunning?as_of={(DUE + timedelta(days=7)).isoformat()}").get_data(as_text=True)
    assert "customer on hold (paused)" in html and "1 reminder(s) due" in html
    assert accountant.post(f"/dunning/customers/{customer_id}/hold", data={"reason": "bored"}).status_code == 302
    with app.app_context():
        assert db.session.get(Customer, customer_id).dunning_hold == "paused"  # the bad reason changed nothing
    accountant.post(f"/dunning/customers/{customer_id}/release")
    with app.app_context():
        assert db.session.get(Customer, customer_id).dunning_hold is None
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == customer_id,
                                                                     AuditEntry.subject_type == "customer")).all()
        assert "dunning.customer_held" in actions and "dunning.customer_released" in actions


def test_viewers_cannot_hold_or_dispute_and_a_form_needs_its_csrf_token(client_as, world, app):
    invoice_id, customer_id, _ = world["Bolt"]
    viewer = client_as("viewer")
    assert "Hold reminders" not in viewer.get(f"/customers/{customer_id}").get_data(as_text=True)
    assert viewer.post(f"/dunning/customers/{customer_id}/hold", data={"reason": "paused"}).status_code == 403
    assert viewer.post(f"/dunning/invoices/{invoice_id}/dispute", data={"disputed": "1"}).status_code == 403
    accountant = client_as("accountant")
    assert accountant.post(f"/dunning/customers/{customer_id}/hold", data={"reason": "paused"},
                           csrf=False).status_code == 400
    with app.app_context():
        assert db.session.get(Customer, customer_id).dunning_hold is None


def test_dispute_an_invoice_from_its_page(client_as, world, app):
    invoice_id, _, number = world["Cargo"]
    accountant = client_as("accountant")
    assert "Mark disputed" in accountant.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    accountant.post(f"/dunning/invoices/{invoice_id}/dispute", data={"disputed": "1", "note": "wrong seats"})
    page = accountant.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert "Disputed: no payment reminder lists this invoice" in page and "marked disputed" in page
    html = accountant.get(f"/dunning?as_of={(DUE + timedelta(days=7)).isoformat()}").get_data(as_text=True)
    assert "invoice disputed" in html
    accountant.post(f"/dunning/invoices/{invoice_id}/dispute", data={"disputed": "0"})
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).disputed is False


def test_reminders_show_on_the_customer_and_invoice_pages_with_their_pdf(client_as, world, app):
    invoice_id, customer_id, number = world["Bolt"]
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        result = service.run(entity, DUE + timedelta(days=7), Actor.system("test"), enqueue=False)
        notice_id = next(n.id for n in result.written if n.customer_id == customer_id)
    viewer = client_as("viewer")
    for page in (f"/customers/{customer_id}", f"/invoices/{invoice_id}"):
        html = viewer.get(page).get_data(as_text=True)
        assert f"/dunning/reminders/{notice_id}/pdf" in html and "queued" in html, page
    assert "payment reminder, level 1 (7 days past due)" in viewer.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    pdf = viewer.get(f"/dunning/reminders/{notice_id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"


def test_the_legal_entity_form_takes_an_optional_statutory_interest_rate(client_as, world, app):
    admin = client_as("admin")
    with app.app_context():
        entity_id = db.session.scalar(select(LegalEntity.id))
    form = admin.get(f"/settings/entities/{entity_id}/edit").get_data(as_text=True)
    assert "Statutory interest" in form and "base rate + 9 points" in form
    values = {"name": "DE01 GmbH", "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin", "locale": "de_DE",
              "vat_id": "DE136695976", "address_line1": "Friedrichstraße 68", "postcode": "10117", "city": "Berlin",
              "iban": "DE89370400440532013000"}
    bad = admin.post(f"/settings/entities/{entity_id}/edit", data={**values, "late_interest_rate": "9,125"})
    assert bad.status_code == 422 and "more than two decimals" in bad.get_data(as_text=True)
    assert admin.post(f"/settings/entities/{entity_id}/edit",
                      data={**values, "late_interest_rate": "9,12"}).status_code == 302
    with app.app_context():
        assert db.session.get(LegalEntity, entity_id).late_interest_rate == Decimal("9.12")
    assert 'value="9,12"' in admin.get(f"/settings/entities/{entity_id}/edit").get_data(as_text=True)
    assert admin.post(f"/settings/entities/{entity_id}/edit", data={**values, "late_interest_rate": ""}).status_code == 302
    with app.app_context():
        assert db.session.get(LegalEntity, entity_id).late_interest_rate is None
