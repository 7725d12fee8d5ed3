"""The German demo entity in Chromium: amounts, quantities, rates, dates and times typed and shown as a German
finance admin writes them (issue 13, item 1)."""
import re
from datetime import date

import pytest
from playwright.sync_api import expect

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.records.entities import get_legal_entity_by_code
from tests.browser.test_walkthrough import log_in

NBSP = "\u00a0"


@pytest.fixture
def billed(app, demo_data):
    """The demo data, billed inline for today's month: two issued invoices of 58,53 €."""
    with app.app_context():
        entity = get_legal_entity_by_code(demo_data.entity_code)
        run = start_billing_run(entity, date.today(), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        db.session.commit()
    return demo_data


def test_a_payment_typed_as_30_komma_00_is_applied_as_30_euro(page, billed, screenshot):
    log_in(page, billed)
    expect(page.locator("html")).to_have_attribute("lang", "de-DE")
    page.goto("/invoices")
    page.get_by_role("link", name=re.compile(r"DE01-\d{4}-000001")).first.click()
    expect(page.locator("#amount-due")).to_have_text(f"58,53{NBSP}€")

    form = page.locator("#record-payment")
    amount = form.get_by_label(re.compile("^Amount"))
    expect(amount).to_have_value("58,53")  # what is due, as the entity writes it
    received = form.get_by_label(re.compile("^Received on"))
    expect(received).to_have_attribute("placeholder", "DD.MM.YYYY")
    expect(received).to_have_value(re.compile(r"^\d{2}\.\d{2}\.\d{4}$"))  # today, day first
    amount.fill("30,00")
    received.fill(date.today().strftime("%d.%m.%Y"))
    form.get_by_label(re.compile("^Reference")).fill("Kontoauszug 7")
    form.get_by_role("button", name="Record payment").click()

    expect(page.locator(".flash-success")).to_have_text(f"Payment of 30,00{NBSP}€ recorded.")
    expect(page.locator("#amount-due")).to_have_text(f"28,53{NBSP}€")
    expect(page.locator("body")).to_contain_text("Kontoauszug 7")
    expect(page.get_by_role("cell", name=f"30,00{NBSP}€").first).to_be_visible()
    screenshot(page, "locale-payment")


def test_a_garbled_amount_says_how_to_write_it(page, billed):
    log_in(page, billed)
    page.goto("/invoices")
    page.get_by_role("link", name=re.compile(r"DE01-\d{4}-000001")).first.click()
    form = page.locator("#record-payment")
    form.get_by_label(re.compile("^Amount")).fill("49,00,0")
    form.get_by_role("button", name="Record payment").click()
    expect(page.locator("#error-payment_amount")).to_have_text("'49,00,0' is not a number: write e.g. 1.234,56")
    expect(page.locator("#amount-due")).to_have_text(f"58,53{NBSP}€")


def test_a_contract_line_of_2_komma_5_at_19_komma_45_percent(page, billed, screenshot):
    log_in(page, billed)
    page.goto("/contracts")
    page.get_by_role("link", name="C-1001").click()
    expect(page.locator("body")).to_contain_text(f"49,00{NBSP}€")
    expect(page.locator("body")).to_contain_text(f"19,45{NBSP}%")
    page.get_by_role("button", name="Edit").click()

    expect(page.get_by_label("Line 1: Unit price")).to_have_value("49,00")
    expect(page.get_by_label("Line 1: VAT rate %")).to_have_value("19,45")
    start = page.get_by_label(re.compile("^Start date"))
    expect(start).to_have_value(date.today().replace(day=1).strftime("%d.%m.%Y"))
    page.get_by_label("Line 1: Quantity").fill("2,5")
    page.get_by_label(re.compile("^End date")).fill("31.12.2030")
    page.get_by_role("button", name="Save contract").click()

    expect(page.locator(".flash-success")).to_contain_text("saved")
    lines = page.locator("table").filter(has_text="Unit price")
    expect(lines).to_contain_text("2,5")
    expect(lines).to_contain_text(f"122,50{NBSP}€")  # 2,5 × 49,00 €
    expect(lines).to_contain_text(f"VAT 19,45{NBSP}%")
    expect(page.locator("body")).to_contain_text("2030-12-31")
    screenshot(page, "locale-contract")


def test_a_schedule_time_is_typed_on_a_24_hour_clock(page, billed):
    log_in(page, billed)
    page.goto("/schedules/new")
    time = page.locator("input[name=time]")
    expect(time).to_have_attribute("type", "text")  # not Chromium's 12-hour picker of an en-US browser
    expect(time).to_have_value("06:00")
    time.fill("6:30 PM")
    page.get_by_label(re.compile("^Name")).fill("Abends")
    page.get_by_role("button", name=re.compile("^(Create|Save)")).click()
    expect(page.locator("body")).to_contain_text("18:30")
