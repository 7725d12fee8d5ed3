"""The seed page's walkthrough in a real browser, with a real RQ worker doing the run."""
import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, TOTP_SECRET, totp_code


@pytest.fixture
def worker(app):
    """An RQ worker on the test database and Redis, for the length of the test."""
    process = subprocess.Popen([sys.executable, "worker.py", "billing", "delivery", "collection", "default"], cwd=ROOT,
                               env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    yield process
    process.terminate()
    process.wait(30)


def log_in(page, demo):
    """The demo admin signs in with the password and the code of the secret the demo_data fixture enrolled."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(demo.admin_email)
    page.get_by_label("Password").fill(demo.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Authentication code").fill(totp_code(TOTP_SECRET))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_billing_run_walkthrough(page, demo_data, worker, screenshot):
    log_in(page, demo_data)

    # Agents > Definitions lists the Billing Run Agent, in Code mode.
    page.get_by_text("Agents", exact=True).click()
    page.get_by_role("link", name="Definitions", exact=True).click()
    expect(page.get_by_role("link", name="Billing Run Agent")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Code")
    screenshot(page, "agents")
    page.get_by_role("link", name="Billing Run Agent").click()
    expect(page.locator("body")).to_contain_text("manual.trigger")

    # Run: the button shows the run's preview (2 invoices, 117,06 €); Confirm starts it and links to it.
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#preview-totals")).to_have_text("117,06\u00a0€")
    page.get_by_role("button", name="Confirm").click()
    started = page.get_by_role("link", name="Run #1 started — view progress")
    expect(started).to_be_visible()
    screenshot(page, "run-started")
    started.click()

    # The run page updates itself until the run has completed: 2 contracts, 2 invoices, 117,06 €.
    expect(page.locator("#run-summary")).to_contain_text("completed", timeout=60_000)
    expect(page.locator("#run-summary")).to_contain_text("2 / 2")
    expect(page.locator("#run-totals")).to_have_text("117,06\u00a0€")
    expect(page.locator("#run-summary [hx-trigger]")).to_have_count(0)  # polling stopped
    screenshot(page, "run-detail")

    # The Audit tab: started, completed, and who triggered it.
    page.get_by_role("tab", name="Audit").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/audit$"))
    audit = page.locator("#run-body")
    expect(audit).to_contain_text("Queued by admin@arbill.example")
    expect(audit).to_contain_text("Started")
    expect(audit).to_contain_text("Completed")
    screenshot(page, "run-audit")

    # Runs > Billing lists the run with its number, contracts, total and status.
    page.get_by_text("Runs", exact=True).click()
    page.get_by_role("link", name="Billing", exact=True).click()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("117,06")
    expect(row).to_contain_text("completed")
    screenshot(page, "runs")

    # Reports > AR Aging shows both customers.
    page.get_by_text("Reports", exact=True).click()
    page.get_by_role("link", name="AR Aging", exact=True).click()
    expect(page.locator("body")).to_contain_text("Bolt")
    expect(page.locator("body")).to_contain_text("Starship Technologies")
    expect(page.locator("body")).to_contain_text("58,53")
    screenshot(page, "ar-aging")
