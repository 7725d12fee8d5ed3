"""The header's search: invoice number, customer name or e-mail, contract reference and IBAN, within the legal
entities the user may see; one hit opens the record."""
from datetime import date

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Customer, Invoice
from tests.factories import make_contract, make_entity

ACTOR = Actor.system("test")
IBAN = "DE89370400440532013000"


@pytest.fixture
def two_entities(app):
    with app.app_context():
        de01 = make_entity("DE01")
        de02 = make_entity("DE02", iban="DE02120300000000202051")
        make_contract(de01, "SRCH-ALPHA", start=date(2026, 11, 1), customer="Alpha Logistik GmbH")
        make_contract(de01, "SRCH-BETA", start=date(2026, 11, 1), customer="Beta Handel AG")
        make_contract(de02, "SRCH-GAMMA", start=date(2026, 11, 1), customer="Alpha Zweite GmbH")
        alpha = db.session.scalar(select(Customer).where(Customer.name == "Alpha Logistik GmbH"))
        alpha.iban = IBAN
        db.session.commit()
        for entity in (de01, de02):
            run = start_billing_run(entity, date(2026, 11, 26), "cli", ACTOR, enqueue=False).run
            execute_run(run.id, inline=True)
        numbers = {i.customer.name: (i.id, i.number) for i in db.session.scalars(select(Invoice))}
        return {"alpha_id": alpha.id, "numbers": numbers}


def test_an_invoice_number_opens_the_invoice(client_in, two_entities):
    client = client_in("DE01", "viewer")
    invoice_id, number = two_entities["numbers"]["Alpha Logistik GmbH"]
    response = client.get("/search", query_string={"q": f"  {number} "})
    assert response.status_code == 302 and response.headers["Location"] == f"/invoices/{invoice_id}"


def test_a_name_finds_customers_contracts_and_invoices_of_the_users_entities_only(client_in, two_entities):
    client = client_in("DE01", "viewer")
    page = client.get("/search", query_string={"q": "alpha"}).get_data(as_text=True)
    assert 'id="found-customer"' in page and "Alpha Logistik GmbH" in page
    assert "Alpha Zweite GmbH" not in page and "SRCH-GAMMA" not in page  # DE02's: not theirs
    # The contract reference is searched too, and the header's search box is on every page.
    page = client.get("/search", query_string={"q": "srch-"}).get_data(as_text=True)
    assert "SRCH-ALPHA" in page and "SRCH-BETA" in page and "SRCH-GAMMA" not in page
    assert 'role="search"' in client.get("/").get_data(as_text=True)


def test_an_iban_typed_with_spaces_finds_its_customer(client_in, two_entities):
    client = client_in("DE01", "viewer")
    response = client.get("/search", query_string={"q": "de89 3704 0044 0532 0130 00"})
    assert response.status_code == 302 and response.headers["Location"] == f"/customers/{two_entities['alpha_id']}"


def test_an_organisation_wide_user_finds_in_every_entity_and_sees_which(client_as, two_entities, users):
    page = client_as("viewer").get("/search", query_string={"q": "alpha"}).get_data(as_text=True)
    assert "Alpha Logistik GmbH" in page and "Alpha Zweite GmbH" in page and ">DE02<" in page


def test_nothing_found_and_too_short_say_so(client_in, two_entities):
    client = client_in("DE01", "viewer")
    assert "Nothing found for “zzzz-none”" in client.get("/search", query_string={"q": "zzzz-none"}).get_data(as_text=True)
    assert "at least two characters" in client.get("/search", query_string={"q": "a"}).get_data(as_text=True)
    # LIKE's wildcards are taken literally: '%' finds nothing rather than everything.
    assert "Nothing found" in client.get("/search", query_string={"q": "%%"}).get_data(as_text=True)
