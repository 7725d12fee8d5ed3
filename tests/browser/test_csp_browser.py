"""The pages run under the Content-Security-Policy (app/web/security.py) in Chromium: no page reports a
violation, and what htmx and app/static/arbill.js do still works (tabs, a row that expands, a confirm)."""
from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Customer, Invoice, LegalEntity
from tests.browser.test_walkthrough import log_in

# Every violation the page reports, and (for a policy Chromium enforces before any script runs) its console.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def billed(app, demo_data):
    """The demo data billed once: a completed run with invoices."""
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).filter_by(code=demo_data.entity_code))
        run = start_billing_run(entity, date.today(), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
        customer = db.session.get(Customer, invoice.customer_id)
        return {"run": run.id, "invoice": invoice.id, "customer": customer.id, "contract": invoice.contract_id,
                "demo": demo_data}


@pytest.fixture
def watched(page):
    problems: list[str] = []
    page.add_init_script(WATCH_VIOLATIONS)
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    return page, problems


def violations(page) -> list[str]:
    return page.evaluate("window.__violations")


def test_the_main_pages_run_under_the_policy_without_a_violation(watched, billed):
    page, problems = watched
    log_in(page, billed["demo"])
    run, invoice = billed["run"], billed["invoice"]
    urls = ["/", "/agents", "/agents/billing_run", "/agents/orchestration", "/schedules", "/schedules/new", "/runs",
            f"/runs/{run}", f"/runs/{run}/invoices", f"/runs/{run}/contracts", f"/runs/{run}/audit", "/invoices",
            f"/invoices/{invoice}", f"/customers/{billed['customer']}", f"/contracts/{billed['contract']}",
            "/contracts", "/contracts/new", "/contracts/import", "/customers", "/reports/aging", "/bank",
            "/collections", "/settings/entities", "/settings/users", "/settings/tax-codes", "/mailbox",
            "/no-such-page"]
    for url in urls:
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        assert violations(page) == [], url
    assert problems == []


def test_htmx_and_the_page_scripts_work_under_the_policy(watched, billed):
    page, problems = watched
    log_in(page, billed["demo"])

    # A run's tabs: htmx swaps the panel, arbill.js marks the tab selected.
    page.goto(f"/runs/{billed['run']}")
    page.get_by_role("tab", name="Audit").click()
    expect(page).to_have_url(re.compile(rf"/runs/{billed['run']}/audit$"))
    expect(page.get_by_role("tab", name="Audit")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="Audit")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("nav.tabs [role=tab].active")).to_have_count(1)

    # AR aging: a customer's row expands with htmx.
    page.goto("/reports/aging")
    rows_before = page.locator(".aging-table tbody tr").count()
    page.locator(".aging-table tbody a[hx-get]").first.click()
    expect(page.locator(".aging-table tbody tr")).not_to_have_count(rows_before)

    # A form with data-confirm: declining sends nothing, accepting sends it.
    page.goto(f"/contracts/{billed['contract']}")
    end = page.locator("form[data-confirm]")
    expect(end).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.dismiss())
    end.locator("button[type=submit], button:not([type])").first.click()
    expect(page).to_have_url(re.compile(rf"/contracts/{billed['contract']}$"))
    assert "ended" not in (page.locator(".flash").all_inner_texts() or [""])[0].lower()
    page.once("dialog", lambda dialog: dialog.accept())
    end.locator("button[type=submit], button:not([type])").first.click()
    expect(page.locator(".flash")).to_contain_text("ended")

    assert violations(page) == [] and problems == []


def test_the_watch_sees_a_violation(watched, billed):
    """The check above can fail: markup the policy refuses is reported."""
    page, _problems = watched
    log_in(page, billed["demo"])
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<p style="color: red">inline style</p>')""")
    page.wait_for_function("window.__violations.length > 0")
    assert "style-src" in violations(page)[0]
