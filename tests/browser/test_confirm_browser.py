"""Confirm before money moves (issue 13 item 2), in Chromium, doing what the finance team does: Run shows the
preview and starts only on Confirm; billing ahead of time needs the extra tick and is capped; closing a SEPA
batch and Resend all show what they will do first. Each page is watched for Content-Security-Policy violations."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import BillingRun, Customer, Invoice, LegalEntity, SepaBatch
from app.models.types import utcnow
from tests.browser.test_csp_browser import WATCH_VIOLATIONS, violations
from tests.browser.test_walkthrough import log_in


@pytest.fixture
def watched(page):
    problems: list[str] = []
    page.add_init_script(WATCH_VIOLATIONS)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    return page, problems


def runs(app) -> list[BillingRun]:
    with app.app_context():
        db.session.expire_all()
        return list(db.session.scalars(select(BillingRun).order_by(BillingRun.id)))


def entity_today_of(app, code: str) -> date:
    with app.app_context():
        return db.session.scalar(select(LegalEntity).filter_by(code=code)).today()


def open_billing_agent(page):
    page.goto("/agents/billing_run")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_visible()


def test_run_shows_the_preview_with_its_totals_and_confirm_starts_the_run(app, watched, demo_data, screenshot):
    page, problems = watched
    log_in(page, demo_data)
    open_billing_agent(page)

    page.get_by_role("button", name="Run", exact=True).click()
    preview = page.locator("#run-preview")
    expect(preview).to_contain_text("Preview: run as of")
    expect(page.locator("#preview-invoices")).to_have_text("2")
    expect(page.locator("#preview-totals")).to_have_text("117,06\u00a0€")
    expect(page.locator("#preview-emailed")).to_have_text("2")
    expect(page.locator("#preview-debited")).to_have_text("0")
    expect(preview).to_contain_text("Starship Technologies")
    screenshot(page, "run-preview")
    assert runs(app) == []  # the preview started nothing

    page.get_by_role("button", name="Confirm").click()
    started = page.get_by_role("link", name="Run #1 started — view progress")
    expect(started).to_be_visible()
    (run,) = runs(app)
    assert run.status == "pending" and not run.dry_run
    started.click()
    page.get_by_role("tab", name="Audit").click()
    expect(page.locator("#run-body")).to_contain_text(
        "Confirmed by admin@arbill.example after its preview: 2 contracts, 2 invoices, 117,06\u00a0€")
    assert violations(page) == [] and problems == []


def test_cancel_leaves_nothing_started(app, watched, demo_data):
    page, _ = watched
    log_in(page, demo_data)
    open_billing_agent(page)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-preview")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#run-preview")).to_have_count(0)
    assert runs(app) == []


def test_billing_ahead_of_time_needs_the_tick_and_beyond_the_cap_is_refused(app, watched, demo_data, screenshot):
    page, problems = watched
    log_in(page, demo_data)
    today = entity_today_of(app, demo_data.entity_code)

    open_billing_agent(page)
    page.get_by_label("As-of date").fill((today + timedelta(days=40)).isoformat())
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-preview-refused")).to_contain_text("is 40 days after today")
    expect(page.locator("#run-preview-refused")).to_contain_text("at most 31 days ahead")
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)

    open_billing_agent(page)
    ahead = today + timedelta(days=5)
    page.get_by_label("As-of date").fill(ahead.isoformat())
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-preview-ahead")).to_contain_text("This run bills ahead of time")
    expect(page.locator("#run-preview-ahead")).to_contain_text("is 5 days after today")
    screenshot(page, "run-preview-ahead")
    page.get_by_role("button", name="Confirm").click()  # without the tick the browser does not send it
    expect(page.get_by_role("link", name=re.compile("started"))).to_have_count(0)
    assert runs(app) == []
    page.get_by_label("I want to bill ahead of time").check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("link", name="Run #1 started — view progress")).to_be_visible()
    (run,) = runs(app)
    assert run.as_of == ahead
    assert violations(page) == [] and problems == []


@pytest.fixture
def sepa_batch(app, demo_data):
    """The demo billed with Bolt paying by SEPA direct debit: one debit of 58.53 in the open batch."""
    from app.payments.collection import start_collection

    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).filter_by(code=demo_data.entity_code))
        bolt = db.session.scalar(select(Customer).filter_by(name="Bolt"))
        bolt.payment_method, bolt.iban = "sepa_debit", "DE89370400440532013000"
        bolt.mandate_reference, bolt.mandate_date = "MANDATE-BOLT", date(2026, 1, 15)
        db.session.commit()
        run = start_billing_run(entity, None, "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        for invoice in db.session.scalars(select(Invoice).order_by(Invoice.id)).all():
            start_collection(invoice.id)
        db.session.commit()
        return db.session.scalar(select(SepaBatch.id))


def test_closing_a_sepa_batch_shows_the_debits_first_then_closes(app, watched, demo_data, sepa_batch, screenshot):
    page, problems = watched
    log_in(page, demo_data)
    page.goto(f"/collections/batches/{sepa_batch}")
    page.get_by_role("button", name="Close batch…").click()
    expect(page.get_by_role("heading", name=f"Close SEPA batch #{sepa_batch}?")).to_be_visible()
    expect(page.locator("#close-debits")).to_have_text("1")
    expect(page.locator("#close-totals")).to_have_text("58,53\u00a0€")
    expect(page.locator("#close-dates")).to_contain_text("(1 debit)")
    expect(page.locator("#close-dropped-count")).to_have_text("0")
    screenshot(page, "sepa-close-confirm")
    with app.app_context():
        assert db.session.get(SepaBatch, sepa_batch).status == "open"
    page.get_by_role("button", name="Close batch with 1 debit").click()
    expect(page.locator(".flash")).to_contain_text(f"Batch #{sepa_batch} closed: 1 debit")
    expect(page.get_by_role("button", name="Download pain.008")).to_be_visible()
    assert violations(page) == [] and problems == []


@pytest.fixture
def undelivered(app, demo_data):
    """The demo billed two hours ago, nothing e-mailed yet."""
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).filter_by(code=demo_data.entity_code))
        run = start_billing_run(entity, None, "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        db.session.execute(Invoice.__table__.update().values(posted_at=utcnow() - timedelta(hours=2)))
        db.session.commit()


def test_resend_all_shows_count_and_totals_before_anything_is_sent(app, watched, demo_data, undelivered):
    page, problems = watched
    log_in(page, demo_data)
    page.goto("/invoices?delivery=undelivered")
    page.get_by_role("button", name="Resend all 2 by e-mail…").click()
    expect(page.get_by_role("heading", name="E-mail these invoices again?")).to_be_visible()
    expect(page.locator("#resend-count")).to_have_text("2")
    expect(page.locator("#resend-totals")).to_have_text("117,06\u00a0€")
    expect(page.locator("#resend-customers")).to_have_text("2")
    page.get_by_role("button", name="Resend 2 by e-mail").click()
    expect(page.locator(".flash")).to_contain_text("2 invoice(s) will be e-mailed again")
    assert violations(page) == [] and problems == []


def test_retry_failed_shows_its_preview_and_starts_on_confirm(app, watched, demo_data):
    from tests.factories import make_contract

    page, problems = watched
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity).filter_by(code=demo_data.entity_code))
        make_contract(entity, "C-BAD", start=entity.today().replace(day=1),
                      lines=[("Support", "1", "10.00", None)])  # no VAT rate: fails
        db.session.commit()
        run = start_billing_run(entity, None, "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        run_id = run.id
    log_in(page, demo_data)
    page.goto(f"/runs/{run_id}")
    page.get_by_role("button", name="Retry 1 failed contract(s)…").click()
    expect(page.locator("#run-preview-title")).to_contain_text("Preview: retry of run #1's 1 failed contract")
    expect(page.locator("#preview-failures")).to_contain_text("1 contract cannot be billed")
    assert len(runs(app)) == 1
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash")).to_contain_text("Run #2 queued for DE01")
    assert len(runs(app)) == 2
    assert violations(page) == [] and problems == []
