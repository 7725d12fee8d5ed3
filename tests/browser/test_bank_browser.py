"""Records > Bank in a real browser: an accountant uploads the day's camt.053, reads the summary, searches the
unmatched queue, assigns the waiting credit to its invoice (HTMX, in the row), and the invoice is then paid."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.billing.references import creditor_reference
from app.extensions import db
from tests.browser.test_login import log_in
from tests.conftest import PASSWORD
from tests.integration.test_collection import sepa_entity
from tests.integration.test_reconciliation import credit, statement, three_invoices


def test_an_accountant_imports_a_statement_and_assigns_what_waits(app, users, page: Page, live_server, tmp_path,
                                                                    screenshot):
    with app.app_context():
        entity = sepa_entity()
        first, second, _ = three_invoices(entity)  # 58.53 € each, issued
        db.session.commit()
        first_number, second_number, second_id = first.number, second.number, second.id
    path = tmp_path / "camt053-2026-12-03.xml"
    path.write_bytes(statement([
        credit("58.53", "R1", creditor_reference=creditor_reference(first_number), counterparty_name="Acme Tools"),
        credit("58.53", "R2", counterparty_name="Hallenbau Nord eG", counterparty_iban="DE75512108001245126199",
               remittance="Zahlung Halle 3 Dezember"),
    ]))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/login")
    log_in(page, "accountant@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_text("Records", exact=True).click()
    page.get_by_role("link", name="Bank", exact=True).click()
    expect(page.get_by_role("heading", name="Bank", exact=True)).to_be_visible()

    # Upload: the summary says what the Reconciliation Agent applied and what waits.
    page.get_by_label("Statement file").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("Statement imported: 2 new entries.")
    expect(summary).to_contain_text("1 matched")
    expect(summary).to_contain_text("1 unmatched")
    expect(summary).to_contain_text("Applied: 58,53\u00a0€")
    expect(page.locator("#statements")).to_contain_text("camt053-2026-12-03.xml")
    expect(page.locator("#queue-totals")).to_contain_text("1 credit waits in EUR")
    screenshot(page, "bank-imported")

    # Search the queue as one types: the URL keeps the search.
    search = page.get_by_role("searchbox", name="Search the unmatched queue")
    search.fill("miete")
    expect(page.locator("#bank-queue")).to_contain_text("No waiting credit matches “miete”")
    expect(page).to_have_url(re.compile(r"/bank\?q=miete$"))
    search.fill("halle 3")
    row = page.locator("#queue tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Hallenbau Nord eG")
    expect(row).to_contain_text("the payer is not one known customer")
    expect(page).to_have_url(re.compile(r"/bank\?q=halle(\+|%20)3$"))

    # Assign it to the second invoice in the row: the row says what was done, the totals follow.
    row.get_by_text("Assign", exact=True).click()
    row.get_by_label("Invoice number").fill("DE01-2026-999999")
    row.get_by_role("button", name="Apply").click()
    expect(page.locator("#queue")).to_contain_text("no invoice 'DE01-2026-999999' in this legal entity")
    row = page.locator("#queue tbody tr")
    row.get_by_label("Invoice number").fill(second_number)
    row.get_by_role("button", name="Apply").click()
    expect(page.locator("#queue")).to_contain_text(f"Applied 58,53\xa0€ to {second_number}; 0,00\xa0€ still due.")
    expect(page.locator("#queue-totals")).to_contain_text("Nothing waits")
    screenshot(page, "bank-assigned")

    # The entry's page shows where the money went; the invoice is paid and links back to the entry.
    page.locator("#queue").get_by_role("link", name=re.compile(r"Bank entry #\d+")).click()
    expect(page.locator("#entry-payments")).to_contain_text(second_number)
    page.locator("#entry-payments").get_by_role("link", name=second_number).click()
    expect(page).to_have_url(f"{live_server}/invoices/{second_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("paid")
    expect(page.locator("#amount-due")).to_have_text("0,00\u00a0€")
    expect(page.locator("#payments")).to_contain_text("Hallenbau Nord eG")
    expect(page.locator("#payments").get_by_role("link", name=re.compile(r"bank entry #\d+"))).to_be_visible()
    screenshot(page, "bank-invoice-paid")
    assert errors == []
