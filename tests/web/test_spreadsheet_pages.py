"""Spreadsheets as they come (issue 13 item 4): a German Excel CSV imported as contracts (page and CLI) and as a
bank statement; the invoice list and AR aging exported as CSV with the list's filters, and Excel-friendly."""
from __future__ import annotations

import codecs
import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BankEntry, Contract, ContractLine, Customer
from tests.factories import make_contract, make_entity
from tests.web.test_records_invoices import run_inline, set_auto_post

DATA = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"
EXCEL_CONTRACTS = (DATA / "contracts-excel-de.csv").read_bytes()
EVIL = '=HYPERLINK("http://evil.example","click")'


def counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Contract, ContractLine, Customer))


def upload(client, data: bytes, url="/contracts/import", name="vertraege.csv", **fields):
    return client.post(url, data={"file": (io.BytesIO(data), name), **fields}, content_type="multipart/form-data")


@pytest.fixture
def de01(app):
    with app.app_context():
        entity = make_entity("DE01")  # DE: locale de_DE
        db.session.commit()
        assert entity.locale == "de_DE"
        return entity.id


# ------------------------------------------------------------------ contracts import
def test_a_german_excel_contracts_file_imports_and_says_how_it_was_read(app, client_as, de01):
    client = client_as("accountant")
    response = upload(client, EXCEL_CONTRACTS)
    assert response.status_code == 302, response.get_data(as_text=True)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported 2 contracts with 3 lines; created 2 customers." in html
    assert "The file uses &#39;;&#39; between columns — read as such." in html
    assert "The file is Windows-1252 (cp1252) text" in html and "Decimals are written with a comma" in html
    with app.app_context():
        lines = db.session.execute(select(Contract.reference, Customer.name, ContractLine.description,
                                          ContractLine.quantity, ContractLine.unit_price)
                                   .join(ContractLine, ContractLine.contract_id == Contract.id)
                                   .join(Customer, Contract.customer_id == Customer.id)
                                   .order_by(ContractLine.id)).all()
    assert [(r, c, d, Decimal(q), Decimal(p)) for r, c, d, q, p in lines] == [
        ("C-EXCEL-1", "Müller GmbH", 'Wartung "Süd"; Halle 3', Decimal(1), Decimal("1234.56")),
        ("C-EXCEL-1", "Müller GmbH", "Support (Stunden)", Decimal("2.5"), Decimal("30.00")),
        ("C-EXCEL-2", "Bäckerei Größe KG", "Lizenz für Kasse – Filiale", Decimal(1), Decimal("49.00"))]


def test_a_bad_number_in_a_german_file_names_line_column_and_value_and_imports_nothing(app, client_as, de01):
    text = EXCEL_CONTRACTS.decode("cp1252").replace(";49,00;", ";49,00,0;").replace(";2,5;30,00;", ";2,5;30.00;")
    response = upload(client_as("accountant"), text.encode("cp1252"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Nothing was imported: 2 problems." in html
    assert "line 3: unit_price: &#39;30.00&#39; has a decimal point, but this file writes decimals with a comma " \
           "(line 2, unit_price &#39;1.234,56&#39;): write every number one way" in html
    assert "line 4: unit_price: &#39;49,00,0&#39; is not a number" in html
    assert counts(app) == (0, 0, 0)


def test_a_file_with_no_delimiter_says_so_instead_of_every_column_missing(app, client_as, de01):
    response = upload(client_as("accountant"), b"entity|contract_ref|customer\nDE01|C-1|Acme\n")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "line 1: header: no &#39;,&#39;, &#39;;&#39; or tab between the column names" in html
    assert counts(app) == (0, 0, 0)


def test_the_cli_reads_the_same_german_file(app, runner, de01, tmp_path):
    path = tmp_path / "vertraege.csv"
    path.write_bytes(EXCEL_CONTRACTS)
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "The file uses ';' between columns — read as such." in result.output
    assert "Imported 2 contract(s) with 3 line(s); created 2 customer(s)." in result.output


# ------------------------------------------------------------------ bank CSV
@pytest.fixture
def bank_world(app, users):
    from tests.integration.test_collection import sepa_entity

    with app.app_context():
        entity = sepa_entity()
        db.session.commit()
        return entity.id


def test_a_bank_csv_from_german_excel_imports_on_the_page_and_the_cli(app, client_as, runner, bank_world, tmp_path):
    data = (DATA / "bank-excel-de.csv").read_bytes()
    response = upload(client_as("accountant"), data, "/bank/import", "umsaetze.csv")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "Statement imported: 2 new entries." in html and "1 outgoing" in html
    assert "The file uses &#39;;&#39; between columns — read as such." in html and "Windows-1252" in html
    with app.app_context():
        entries = db.session.execute(select(BankEntry.direction, BankEntry.amount, BankEntry.counterparty_name)
                                     .order_by(BankEntry.id)).all()
    assert [(d, Decimal(a), n) for d, a, n in entries] == [
        ("credit", Decimal("1234.56"), "Müller GmbH"), ("debit", Decimal("12.30"), "Gebühren für Konto")]
    path = tmp_path / "umsaetze.csv"
    path.write_bytes(data.replace(b"B-EXCEL-", b"B-CLI-"))
    result = runner.invoke(args=["bank", "import", str(path), "--entity", "DE01"])
    assert result.exit_code == 0, result.output
    assert "The file uses ';' between columns — read as such." in result.output


def test_a_bank_csv_with_a_bad_amount_names_the_line(app, client_as, bank_world):
    data = (DATA / "bank-excel-de.csv").read_bytes().replace(b"-12,30", b"-12,3,0")
    response = upload(client_as("accountant"), data, "/bank/import", "umsaetze.csv")
    assert response.status_code == 422
    assert "line 3: amount &#39;-12,3,0&#39; is not a number" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BankEntry)) == 0


# ------------------------------------------------------------------ invoice list export
@pytest.fixture
def invoices_world(app):
    """DE01 (de_DE): Bolt's EUR invoices posted (one long overdue), a formula-named customer's and Starship's USD
    invoice left drafts."""
    with app.app_context():
        entity = make_entity()
        old = date.today() - timedelta(days=120)
        make_contract(entity, "C-1", start=old, customer="Bolt", lines=[("Subscription", "1", "1234.5", "19")])
        db.session.commit()
        run_inline(entity, old + timedelta(days=1))
        make_contract(entity, "C-2", start=date.today(), currency="USD", customer="Starship Technologies",
                      lines=[("Licence", "1", "100", "0")])
        make_contract(entity, "C-3", start=date.today(), customer=EVIL, lines=[("Hack", "1", "1", "19")])
        db.session.commit()
        set_auto_post(False)
        run_inline(entity, date.today())
        starship = db.session.scalar(select(Customer.id).where(Customer.name == "Starship Technologies"))
        return {"starship": starship}


def rows_of(response, delimiter=","):
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_the_invoice_list_exports_its_filtered_invoices(client_as, invoices_world):
    client = client_as("viewer")
    page = client.get("/invoices?status=draft&type=invoice").get_data(as_text=True)
    assert 'href="/invoices.csv?status=draft&amp;type=invoice" download>Download CSV</a>' in page
    assert 'href="/invoices.csv?status=draft&amp;type=invoice&amp;format=excel" download>Excel-friendly CSV' in page
    response = client.get("/invoices.csv?status=draft&type=invoice")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="invoices-DE01-')
    assert not response.get_data().startswith(codecs.BOM_UTF8)
    header, *rows = rows_of(response)
    assert header == ["Number", "Type", "Customer", "Contract", "Period start", "Period end", "Issue date",
                      "Due date", "Status", "Overdue", "Currency", "Net", "VAT", "Total", "Amount due"]
    assert rows and all(row[8] == "draft" and row[0] == "" for row in rows)
    assert {row[2] for row in rows} >= {"Starship Technologies", "'" + EVIL}  # the formula is text
    starship = next(row for row in rows if row[2] == "Starship Technologies")
    assert starship[1] == "Invoice" and starship[10:] == ["USD", "100.00", "0.00", "100.00", "100.00"]
    assert date.fromisoformat(starship[4]) == date.today()

    only = rows_of(client.get(f"/invoices.csv?customer={invoices_world['starship']}"))
    assert [row[2] for row in only[1:]] == ["Starship Technologies"]
    overdue = rows_of(client.get("/invoices.csv?overdue=1"))
    assert overdue[1:] and all(row[2] == "Bolt" and row[9] == "yes" and row[13] == "1469.06" for row in overdue[1:])
    everything = rows_of(client.get("/invoices.csv"))
    assert len(everything) - 1 == len(rows_of(client.get("/invoices.csv?page=2"))) - 1  # all pages, not one


def test_the_excel_friendly_invoice_csv_has_a_bom_semicolons_and_decimal_commas(client_as, invoices_world):
    response = client_as("viewer").get("/invoices.csv?overdue=1&format=excel")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith('-excel.csv"')
    assert response.get_data().startswith(codecs.BOM_UTF8)
    header, *rows = rows_of(response, ";")
    assert header[0] == "Number" and rows
    assert all(row[11:] == ["1234,50", "234,56", "1469,06", "1469,06"] for row in rows)
    assert all(len(row[6]) == 10 and row[6][4] == "-" for row in rows)  # dates stay ISO


def test_a_bad_filter_or_format_is_a_400_that_says_why(client_as, invoices_world):
    client = client_as("viewer")
    bad = client.get("/invoices.csv?period_from=yesterday")
    assert bad.status_code == 400 and bad.get_data(as_text=True).startswith("period_from: ")
    wrong = client.get("/invoices.csv?format=xlsx")
    assert wrong.status_code == 400 and "format: 'xlsx' is not one of csv, excel" in wrong.get_data(as_text=True)


def test_an_english_entity_is_offered_the_plain_csv_only(app, client_as):
    with app.app_context():
        make_entity("US01", country="US", currency="USD", timezone="America/New_York", vat_id=None)
        db.session.commit()
    page = client_as("viewer").get("/invoices").get_data(as_text=True)
    assert "Excel-friendly" not in page


# ------------------------------------------------------------------ AR aging export
def test_the_aging_csv_has_an_excel_friendly_variant_too(client_as, invoices_world):
    client = client_as("viewer")
    page = client.get("/reports/aging").get_data(as_text=True)
    assert "Excel-friendly CSV" in page and "format=excel" in page
    response = client.get("/reports/aging.csv?format=excel")
    assert response.status_code == 200 and response.get_data().startswith(codecs.BOM_UTF8)
    header, *rows = rows_of(response, ";")
    assert header[:2] == ["Currency", "Customer"]
    bolt = next(row for row in rows if row[1] == "Bolt")
    assert bolt[-1] == "1469,06"
    assert client.get("/reports/aging.csv?format=ods").status_code == 400
