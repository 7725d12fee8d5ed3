"""Draft review that scales (issue 13 item 3), in Chromium: tick two drafts on the invoice list, Post, check what
will happen, Confirm; the list shows their numbers and the e-mail state changes live from queued to e-mailed
once a worker sends them."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, Invoice, LegalEntity
from tests.browser.test_csp_browser import WATCH_VIOLATIONS, violations
from tests.browser.test_walkthrough import log_in
from tests.conftest import ROOT


@pytest.fixture
def two_drafts(app, demo_data):
    """The demo billed with auto_post off: Bolt's and Starship Technologies' drafts, nothing numbered."""
    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        agent.configuration = {**agent.configuration, "auto_post": False}
        entity = db.session.scalar(select(LegalEntity).filter_by(code=demo_data.entity_code))
        db.session.commit()
        run = start_billing_run(entity, None, "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        assert {i.status for i in db.session.scalars(select(Invoice))} == {"draft"}


@pytest.fixture
def start_worker(mail_sink):
    """Starts an RQ worker (relay, delivery, collection) that e-mails to the test's SMTP server when called."""
    started = []

    def start():
        env = {**os.environ, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mail_sink.port)}
        started.append(subprocess.Popen([sys.executable, "worker.py", "default", "delivery", "collection"], cwd=ROOT,
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True))

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def test_post_two_drafts_from_the_list_and_watch_them_being_e_mailed(app, page, demo_data, two_drafts, start_worker,
                                                                    mail_sink, screenshot):
    problems: list[str] = []
    page.add_init_script(WATCH_VIOLATIONS)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    log_in(page, demo_data)
    page.goto("/invoices")
    filters = page.locator("form.filters")
    filters.get_by_label("Status").select_option("draft")
    expect(page.locator("#bulk-invoices")).to_contain_text("all 2 invoices matching these filters")

    drafts = page.get_by_label(re.compile(r"^Select draft C-100\d"))
    expect(drafts).to_have_count(2)
    drafts.nth(0).check()
    drafts.nth(1).focus()
    page.keyboard.press("Space")  # a box is ticked by keyboard too
    expect(page.get_by_label("Select all invoices on this page")).to_be_checked()  # arbill.js follows the ticks
    page.get_by_role("button", name="Post…").click()

    expect(page.get_by_role("heading", name="Post these drafts?")).to_be_visible()
    expect(page.locator("#post-count")).to_have_text("2")
    expect(page.locator("#post-totals")).to_have_text("117,06\u00a0€")
    expect(page.locator("#post-emailed")).to_have_text("2")
    expect(page.locator("#post-debited")).to_have_text("0")
    expect(page.locator("#post-numbers")).to_contain_text("DE01-")
    screenshot(page, "bulk-post-confirm")
    with app.app_context():
        assert {i.status for i in db.session.scalars(select(Invoice))} == {"draft"}  # the step posted nothing

    page.get_by_role("button", name="Post 2 drafts").click()
    expect(page.locator(".flash")).to_contain_text(re.compile(r"2 drafts posted as DE01-\d{4}-000001 – DE01-\d{4}-000002"))
    rows = page.locator("#invoices-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#invoices-table")).to_contain_text(re.compile(r"DE01-\d{4}-000001"))
    expect(page.locator("#invoices-table")).to_contain_text(re.compile(r"DE01-\d{4}-000002"))
    states = page.locator("#invoices-table .delivery-state")
    expect(states).to_have_count(2)
    for n in range(2):
        expect(states.nth(n)).to_contain_text("Queued for e-mail…")
    screenshot(page, "bulk-post-queued")

    start_worker()  # the e-mails go out; the page asks every 2 s and shows it without a reload
    for n in range(2):
        expect(states.nth(n)).to_contain_text(re.compile(r"E-mailed to \S+@\S+ at \d\d:\d\d"), timeout=45_000)
    expect(page.locator("#invoices-table")).to_contain_text("ap@bolt.example")
    screenshot(page, "bulk-post-e-mailed")
    assert sorted(m["To"] for m in mail_sink.messages()) == ["ap@bolt.example", "billing@starship.example"]
    assert violations(page) == [] and problems == []
