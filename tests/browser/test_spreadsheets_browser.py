"""Spreadsheets in a real browser: an accountant uploads the contracts file German Excel saved (Windows-1252, `;`,
decimal commas) on Records > Contracts > Import CSV and sees the contracts; then filters the invoice list by a
customer and downloads it as CSV and as Excel-friendly CSV."""
from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import LegalEntity
from tests.browser.test_login import log_in
from tests.conftest import TOTP_SECRET

EXCEL_CONTRACTS = Path(__file__).resolve().parent.parent / "data" / "spreadsheets" / "contracts-excel-de.csv"


def test_a_german_excel_contracts_file_imports_and_the_invoice_list_downloads(app, page: Page, demo_data, tmp_path,
                                                                                screenshot):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/login")
    log_in(page, demo_data.admin_email, demo_data.admin_password, TOTP_SECRET)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Records > Contracts > Import CSV: the file as Excel saved it.
    page.get_by_text("Records", exact=True).click()
    page.get_by_role("link", name="Contracts", exact=True).click()
    page.get_by_role("button", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import contracts from a CSV file")).to_be_visible()
    page.get_by_label("CSV file").set_input_files(str(EXCEL_CONTRACTS))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Imported 2 contracts with 3 lines; created 2 customers.")).to_be_visible()
    expect(page.get_by_text("The file uses ';' between columns — read as such.")).to_be_visible()
    expect(page.get_by_text("Decimals are written with a comma — read as such.")).to_be_visible()
    expect(page.get_by_role("link", name="C-EXCEL-1")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Bäckerei Größe KG")
    screenshot(page, "contracts-imported-from-excel")

    # The contracts are billed (as a run would); the invoice list, filtered by customer, downloads as CSV.
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).where(LegalEntity.code == demo_data.entity_code))
        run = start_billing_run(entity, date(2026, 2, 1), "cli", Actor.system("test"), enqueue=False)
        execute_run(run.run.id, inline=True)
        db.session.commit()
    page.get_by_text("Records", exact=True).click()
    page.get_by_role("link", name="Invoices", exact=True).click()
    page.locator("#main select[name=customer]").select_option(label="Müller GmbH")
    expect(page).to_have_url(re.compile(r"customer=\d+"))
    downloads = page.locator("#invoice-downloads")
    expect(downloads).to_contain_text("all 2 invoices of these filters")
    with page.expect_download() as plain:
        downloads.get_by_role("link", name="Download CSV").click()
    text = Path(plain.value.path()).read_bytes().decode("utf-8")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert plain.value.suggested_filename.startswith("invoices-DE01-")
    assert header[:4] == ["Number", "Type", "Customer", "Contract"]
    assert [(row[2], row[3], row[4], row[11]) for row in rows] == [
        ("Müller GmbH", "C-EXCEL-1", "2026-02-01", "1309.56"), ("Müller GmbH", "C-EXCEL-1", "2026-01-01", "1309.56")]

    with page.expect_download() as excel:
        downloads.get_by_role("link", name="Excel-friendly CSV (;)").click()
    data = Path(excel.value.path()).read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and excel.value.suggested_filename.endswith("-excel.csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))[1:]
    assert [(row[2], row[11], row[12]) for row in rows] == [("Müller GmbH", "1309,56", "239,82")] * 2
    assert errors == []
