"""At 390 px (a phone held upright) every main page fits the screen: the navigation folds behind a Menu button
instead of pushing the page to 1,000 px, wide tables scroll inside their own box, and a tap on a menu lands on
what it shows."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Invoice
from app.records.entities import get_legal_entity_by_code
from tests.browser.test_login import log_in
from tests.conftest import TOTP_SECRET

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(page: Page, app, demo_data):
    with app.app_context():
        entity = get_legal_entity_by_code(demo_data.entity_code)
        run = start_billing_run(entity, entity.today(), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
    page.set_viewport_size(PHONE)
    page.goto("/login")
    log_in(page, demo_data.admin_email, demo_data.admin_password, TOTP_SECRET)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_every_main_page_fits_a_phone(app, phone: Page, screenshot):
    with app.app_context():
        invoice_id = db.session.scalar(select(Invoice.id).order_by(Invoice.id))
    for path in ("/", "/invoices", f"/invoices/{invoice_id}", "/contracts", "/customers", "/customers/new",
                 "/reports/aging", "/runs", "/agents", "/collections", "/bank", "/settings/entities",
                 "/settings/users", "/search?q=DE01"):
        phone.goto(path)
        assert page_width(phone) <= PHONE["width"], f"{path} is {page_width(phone)} px wide"
        screenshot(phone, "phone" + path.replace("/", "-").replace("?", "-").replace("=", "-"))


def test_a_tap_on_the_records_menu_opens_the_invoice_list(phone: Page):
    menu = phone.get_by_role("button", name="Menu")  # the menus fold behind it on a phone
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    phone.get_by_text("Records", exact=True).click()
    phone.get_by_role("link", name="Invoices", exact=True).click()
    expect(phone.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    assert page_width(phone) <= PHONE["width"]
