"""The legal entity's locale, both ways: forms read numbers and dates as the entity writes them, and pages, e-mails
and PDFs show amounts, quantities and rates in one formatting."""
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Contract, Invoice, Payment, TaxCode
from tests.factories import add_tax_code, make_contract, make_entity

NBSP = "\u00a0"


def bill(entity, as_of):
    run = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False).run
    execute_run(run.id, inline=True)


def world_of(app, locale: str) -> dict:
    """An entity in `locale` with the walkthrough's contract (49.00 at 19.45 %), billed for November 2026."""
    with app.app_context():
        entity = make_entity(locale=locale)
        add_tax_code(entity, "DE_VAT_19_45", "19.45")
        contract = make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
        db.session.commit()
        bill(entity, date(2026, 11, 26))
        return {"invoice": db.session.scalar(select(Invoice.id)), "contract": contract.id,
                "customer": contract.customer_id}


@pytest.fixture
def german(app):
    return world_of(app, "de_DE")


@pytest.fixture
def american(app):
    return world_of(app, "en_US")


def contract_form(customer_id, **values):
    data = {"reference": "C-9", "customer_id": str(customer_id), "currency": "EUR", "frequency": "monthly",
            "start_date": "01.12.2026", "end_date": "", "payment_terms_days": "",
            "lines-1-description": "Hosting", "lines-1-quantity": "2,5", "lines-1-unit_price": "1.234,50",
            "lines-1-vat_rate": "19,45 %"}
    data.update(values)
    return data


def payments(app, invoice_id):
    with app.app_context():
        return [(p.amount, p.received_on) for p in db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id))]


# ------------------------------------------------------------------ forms read the locale
def test_a_german_payment_of_30_komma_00_is_stored_as_30(app, client_as, german):
    client = client_as("accountant")
    response = client.post(f"/invoices/{german['invoice']}/payments",
                           data={"amount": "30,00", "received_on": "28.11.2026", "reference": "Kontoauszug 7"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert payments(app, german["invoice"]) == [(Decimal("30.00"), date(2026, 11, 28))]
    page = client.get(f"/invoices/{german['invoice']}").get_data(as_text=True)
    assert f"Payment of 30,00{NBSP}€ recorded." in page  # the flash, in the entity's locale
    assert f'id="amount-due">28,53{NBSP}€<' in page
    # The form offers what is still due, as the entity writes it, and reads it back.
    assert 'name="amount" inputmode="decimal" value="28,53"' in page
    assert 'name="received_on" inputmode="numeric" autocomplete="off" placeholder="DD.MM.YYYY"' in page


def test_a_dot_decimal_payment_still_works_in_german(app, client_as, german):
    response = client_as("accountant").post(f"/invoices/{german['invoice']}/payments",
                                            data={"amount": "12.50", "received_on": "2026-11-28"})
    assert response.status_code == 302
    assert payments(app, german["invoice"]) == [(Decimal("12.50"), date(2026, 11, 28))]


def test_a_garbled_german_amount_names_the_form_to_write(app, client_as, german):
    response = client_as("accountant").post(f"/invoices/{german['invoice']}/payments",
                                            data={"amount": "49,00,0", "received_on": "28.11.2026"})
    assert response.status_code == 422
    assert "&#39;49,00,0&#39; is not a number: write e.g. 1.234,56" in response.get_data(as_text=True)
    assert payments(app, german["invoice"]) == []


def test_an_american_entity_keeps_dots(app, client_as, american):
    client = client_as("accountant")
    refused = client.post(f"/invoices/{american['invoice']}/payments",
                          data={"amount": "30,00", "received_on": "2026-11-28"})
    assert refused.status_code == 422
    assert "&#39;30,00&#39; is not a number: write e.g. 1,234.56" in refused.get_data(as_text=True)
    ok = client.post(f"/invoices/{american['invoice']}/payments", data={"amount": "30.00", "received_on": "11/28/2026"})
    assert ok.status_code == 302
    assert payments(app, american["invoice"]) == [(Decimal("30.00"), date(2026, 11, 28))]
    page = client.get(f"/invoices/{american['invoice']}").get_data(as_text=True)
    assert '<html lang="en-US"' in page and "€28.53" in page and f"19.45{NBSP}%" in page


def test_a_german_contract_reads_2_komma_5_and_shows_its_values_back_in_german(app, client_as, german):
    client = client_as("accountant")
    response = client.post("/contracts/new", data=contract_form(german["customer"]))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        contract = db.session.scalar(select(Contract).where(Contract.reference == "C-9"))
        line = contract.lines[0]
        assert (line.quantity, line.unit_price, line.vat_rate) == (Decimal("2.5"), Decimal("1234.50"), Decimal("19.45"))
        assert contract.start_date == date(2026, 12, 1)
        contract_id = contract.id
    edit = client.get(f"/contracts/{contract_id}/edit").get_data(as_text=True)
    for name, shown in (("lines-1-quantity", "2,5"), ("lines-1-unit_price", "1234,50"), ("lines-1-vat_rate", "19,45"),
                        ("start_date", "01.12.2026")):
        assert f'name="{name}" value="{shown}"' in edit, name
    assert 'placeholder="DD.MM.YYYY"' in edit and "1.234 reads as 1234" in edit
    # Saving the form as shown changes nothing.
    saved = client.post(f"/contracts/{contract_id}/edit", data=contract_form(
        german["customer"], **{"lines-1-unit_price": "1234,50", "lines-1-vat_rate": "19,45"}))
    assert saved.status_code == 302
    assert "Nothing changed." in client.get(f"/contracts/{contract_id}").get_data(as_text=True)


def test_the_contract_page_shows_prices_and_rates_as_the_locale_writes_them(client_as, german):
    page = client_as("viewer").get(f"/contracts/{german['contract']}").get_data(as_text=True)
    assert f"49,00{NBSP}€" in page and f"19,45{NBSP}%" in page
    assert "49 EUR" not in page and "19.45" not in page
    assert '<html lang="de-DE"' in page


def test_the_invoice_page_and_a_german_credit_amount(app, client_as, german):
    client = client_as("accountant")
    page = client.get(f"/invoices/{german['invoice']}").get_data(as_text=True)
    assert f"49,00{NBSP}€" in page and f"19,45{NBSP}%" in page
    credited = client.post(f"/invoices/{german['invoice']}/credit",
                           data={"what": "amount", "amount": "10,00", "reason": "Kulanz"})
    assert credited.status_code == 302, credited.get_data(as_text=True)
    with app.app_context():
        note = db.session.scalar(select(Invoice).where(Invoice.kind == "credit_note"))
        assert note.total_amount == Decimal("10.00")


def test_a_german_tax_code_rate(app, client_as, german):
    response = client_as("admin").post("/settings/tax-codes", data={"code": "DE_SPECIAL", "rate": "5,5 %",
                                                                    "category": "S"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(TaxCode.rate).where(TaxCode.code == "DE_SPECIAL")) == Decimal("5.5")


# ------------------------------------------------------------------ PDF and e-mail
def test_the_pdf_and_the_email_show_the_rate_and_amounts_in_german(app, client_as, german):
    pdf = client_as("viewer").get(f"/invoices/{german['invoice']}/pdf").data
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages).replace(NBSP, " ")
    assert "19,45 %" in text and "49,00 €" in text and "58,53 €" in text
    assert "19.45" not in text and "EUR 49" not in text
    with app.app_context():
        from app.agents.builtin.invoice_delivery import mail_templates
        from app.delivery.service import texts

        invoice = db.session.get(Invoice, german["invoice"])
        _subject, body = texts(invoice, invoice.customer, mail_templates())
    assert f"58,53{NBSP}€" in body


def test_a_german_end_date_ends_the_contract(app, client_as, german):
    client = client_as("accountant")
    page = client.get(f"/contracts/{german['contract']}").get_data(as_text=True)
    assert 'name="end_date"' in page and 'placeholder="DD.MM.YYYY"' in page
    assert client.post(f"/contracts/{german['contract']}/end", data={"end_date": "31.12.2026"}).status_code == 302
    with app.app_context():
        contract = db.session.get(Contract, german["contract"])
        assert (contract.status, contract.end_date) == ("ended", date(2026, 12, 31))
