"""Settings > Tax codes (admins), and the tax code of each line on the contract form."""
from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contract, Customer, TaxCode
from app.records.taxcodes import get_code
from tests.factories import make_contract, make_entity


@pytest.fixture
def entity_id(app):
    with app.app_context():
        entity = make_entity()
        contract = make_contract(entity, "C-1", start=date(2026, 1, 1), customer="Bolt",
                                 lines=[("Hosting", "1", "49", None, "DE_VAT_7")])
        db.session.add(Customer(legal_entity_id=entity.id, name="Kowalski Sp. z o.o.", vat_id="PL5260250274"))
        db.session.commit()
        return contract.legal_entity_id


def code_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(TaxCode))


@pytest.mark.parametrize("role, status", [("viewer", 403), ("accountant", 403), ("admin", 200)])
def test_tax_codes_are_for_admins(client_as, entity_id, role, status):
    client = client_as(role)
    assert client.get("/settings/tax-codes").status_code == status
    if status == 403:
        assert client.post("/settings/tax-codes", data={"code": "X", "rate": "0", "category": "Z"}).status_code == 403


def test_admin_sees_the_codes_with_their_category_and_use(admin_client, entity_id):
    html = admin_client.get("/settings/tax-codes").get_data(as_text=True)
    assert "DE_RC" in html and "AE · VAT reverse charge" in html and "Steuerschuldnerschaft" in html
    assert "Tax codes of DE01" in html


def test_admin_adds_a_code_and_a_bad_one_is_refused_with_its_reasons(app, admin_client, entity_id):
    before = code_count(app)
    bad = admin_client.post("/settings/tax-codes", data={"code": "pl rc", "rate": "0", "category": "AE"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "must be 1-32 capital letters" in html and "needs an exemption reason (BR-AE-10)" in html
    assert code_count(app) == before
    good = admin_client.post("/settings/tax-codes", data={"code": "pl_rc", "rate": "0", "category": "AE",
                                                          "reason": "Reverse charge", "reason_code": "vatex-eu-ae"})
    assert good.status_code == 302
    with app.app_context():
        code = db.session.scalar(select(TaxCode).where(TaxCode.code == "PL_RC"))
        assert (code.category, code.reason_code) == ("AE", "VATEX-EU-AE")


def test_a_used_code_is_retired_not_deleted(app, admin_client, entity_id):
    with app.app_context():
        used = db.session.scalar(select(TaxCode.id).where(TaxCode.code == "DE_VAT_7"))
        unused = db.session.scalar(select(TaxCode.id).where(TaxCode.code == "EXPORT"))
    html = admin_client.get("/settings/tax-codes").get_data(as_text=True)
    assert f"/settings/tax-codes/{used}/delete" not in html and f"/settings/tax-codes/{unused}/delete" in html
    admin_client.post(f"/settings/tax-codes/{used}/delete")
    admin_client.post(f"/settings/tax-codes/{used}/retire")
    admin_client.post(f"/settings/tax-codes/{unused}/delete")
    with app.app_context():
        assert db.session.get(TaxCode, used).retired and db.session.get(TaxCode, unused) is None


def contract_form(customer_id, code):
    return {"reference": "C-9", "customer_id": str(customer_id), "currency": "EUR", "frequency": "monthly",
            "start_date": "2026-04-01", "lines-1-description": "Consulting", "lines-1-quantity": "1",
            "lines-1-unit_price": "100", "lines-1-vat_rate": "", "lines-1-tax_code": code}


def test_the_contract_form_offers_the_codes_and_refuses_reverse_charge_without_a_buyer_vat_id(app, client_as,
                                                                                             entity_id):
    client = client_as("accountant")
    page = client.get("/contracts/new").get_data(as_text=True)
    assert '<option value="DE_RC"' in page and 'name="lines-1-tax_code"' in page
    with app.app_context():
        bolt = db.session.scalar(select(Customer.id).where(Customer.name == "Bolt"))
        kowalski = db.session.scalar(select(Customer.id).where(Customer.name == "Kowalski Sp. z o.o."))
    refused = client.post("/contracts/new", data=contract_form(bolt, "DE_RC"))
    assert refused.status_code == 422
    assert "needs the customer&#39;s VAT ID: add it to the customer first" in refused.get_data(as_text=True)
    created = client.post("/contracts/new", data=contract_form(kowalski, "DE_RC"))
    assert created.status_code == 302
    with app.app_context():
        contract = db.session.scalar(select(Contract).where(Contract.reference == "C-9"))
        [line] = contract.lines
        assert line.tax_code.code == "DE_RC" and line.vat_rate == 0


def test_the_edit_form_shows_the_lines_code(app, client_as, entity_id):
    with app.app_context():
        contract_id = db.session.scalar(select(Contract.id).where(Contract.reference == "C-1"))
        code = get_code(db.session.get(Contract, contract_id).legal_entity, "DE_VAT_7")
    html = client_as("accountant").get(f"/contracts/{contract_id}/edit").get_data(as_text=True)
    assert f'<option value="{code.code}" selected>' in html


def test_a_customer_billed_by_reverse_charge_keeps_its_vat_id(app, client_as, entity_id):
    from app.audit import Actor
    from app.records import customers as customer_service
    from app.records.validation import ValidationError

    with app.app_context():
        entity = db.session.get(Contract, db.session.scalar(select(Contract.id))).legal_entity
        kowalski = db.session.scalar(select(Customer).where(Customer.name == "Kowalski Sp. z o.o."))
        kowalski.address_line1, kowalski.postcode, kowalski.city, kowalski.country = "ul. Marszałkowska 1", "00-514", \
            "Warszawa", "PL"
        make_contract(entity, "C-RC", start=date(2026, 1, 1), customer=kowalski.name,
                      lines=[("Consulting", "1", "100", None, "DE_RC")])
        db.session.commit()
        values = customer_service.form_values(kowalski)
        with pytest.raises(ValidationError) as refused:
            customer_service.update_customer(kowalski, {**values, "vat_id": ""}, Actor.system("test"))
        assert "contract C-RC bills this customer with tax code DE_RC (category AE)" in refused.value.errors["vat_id"]
        db.session.rollback()
        assert db.session.get(Customer, kowalski.id).vat_id == "PL5260250274"
