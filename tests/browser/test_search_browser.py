"""The header's search in a real browser: a finance admin types an invoice number a customer quoted on the phone
and lands on the invoice; part of a number lists the invoices it matches."""
from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Invoice
from app.records.entities import get_legal_entity_by_code
from tests.browser.test_login import log_in
from tests.conftest import TOTP_SECRET


def test_the_header_search_opens_an_invoice_by_its_number_and_lists_several_matches(app, page: Page, demo_data, screenshot):
    with app.app_context():
        entity = get_legal_entity_by_code(demo_data.entity_code)
        run = start_billing_run(entity, entity.today(), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        invoice = db.session.scalar(select(Invoice).where(Invoice.number.is_not(None)).order_by(Invoice.id))
        number, customer = invoice.number, invoice.customer.name
    page.goto("/login")
    log_in(page, demo_data.admin_email, demo_data.admin_password, TOTP_SECRET)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    box = page.get_by_role("searchbox", name="Search invoices, customers, contracts, IBANs")
    box.fill(number.lower())
    box.press("Enter")
    expect(page.get_by_role("heading", name=f"Invoice {number}")).to_be_visible()

    box = page.get_by_role("searchbox", name="Search invoices, customers, contracts, IBANs")
    box.fill(number.rsplit("-", 1)[0])  # the series: every invoice of the year
    box.press("Enter")
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
    expect(page.locator("#found-invoice")).to_contain_text(number)
    expect(page.locator("#found-invoice")).to_contain_text(customer)
    screenshot(page, "search")
