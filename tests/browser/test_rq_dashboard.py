"""The RQ dashboard (/rq) in a real browser: what a job carries from Redis is shown as text, never run.

A job's description, arguments and error text come from whoever put data into the job: a customer's
e-mail address ends up in an SMTP server's refusal. Here a real RQ worker fails a job whose queue,
description, arguments and error carry markup, then an admin looks at it in the dashboard.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from app.queues import get_redis
from tests.browser.test_login import log_in
from tests.conftest import PASSWORD, TOTP_SECRET

IMG = '<img src=x onerror="window.__xss=1">'
EMAIL = '"<img/src/onerror=alert(document.domain)>"@x.example'  # a valid address, quoted local part
PAYLOAD = f"{IMG} {EMAIL}"
# A queue name in the URL that would close the string the jobs page's script puts it in.
BREAKOUT = "');}});window.__xss=1;(function(){if(0){$(this).val('"


@pytest.fixture
def failed_job(app):
    """A job in a queue named IMG that a real worker failed: ip_address(PAYLOAD) raises a ValueError
    quoting PAYLOAD; its description is PAYLOAD too. A worker named IMG is registered."""
    with app.app_context():
        connection = get_redis()
        queue = Queue(IMG, connection=connection)
        job = queue.enqueue(ip_address, PAYLOAD, description=PAYLOAD)
        SimpleWorker([queue], connection=connection, name="arbill-test").work(burst=True)
        assert job.get_status(refresh=True) == "failed"
        assert PAYLOAD in job.latest_result().exc_string
        with warnings.catch_warnings():  # RQ cannot name its Redis connection so (no spaces): it says so
            warnings.simplefilter("ignore")
            Worker([queue], connection=connection, name=IMG).register_birth()  # listed until Redis is emptied
    return job


@dataclass
class ScriptLog:
    dialogs: list[str] = field(default_factory=list)  # what scripts passed to alert/confirm/prompt
    errors: list[str] = field(default_factory=list)  # script errors, refused scripts (CSP), failed requests


@pytest.fixture
def scripts(page: Page) -> ScriptLog:
    log = ScriptLog()
    page.on("dialog", lambda dialog: (log.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: log.errors.append(str(error)))
    page.on("console", lambda message: log.errors.append(f"{message.text} ({message.location['url']})")
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico") else None)
    return log  # (the app has no /favicon.ico: Chromium asks for it once per site)


@pytest.fixture
def admin_page(page: Page, users, scripts) -> Page:
    page.goto("/login")
    log_in(page, "admin@example.com", PASSWORD, TOTP_SECRET)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def expect_only_the_dashboards_scripts_ran(page: Page, scripts: ScriptLog) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert scripts.dialogs == []
    assert scripts.errors == []


def test_job_fields_from_redis_are_shown_as_text_and_never_run(admin_page: Page, scripts, failed_job):
    page = admin_page
    page.goto("/rq/")
    queue_row = page.locator("#queues tr[data-role=queue]").filter(has_text=IMG)
    expect(queue_row).to_have_count(1)
    expect(page.locator("#queues img")).to_have_count(0)

    queue_row.locator("td.failed a").first.click()  # its failed jobs
    row = page.locator("#jobs tr[data-role=job]")
    expect(row).to_have_count(1)
    expect(row.locator(".description")).to_have_text(PAYLOAD)
    expect(row.locator("pre.exc_info")).to_contain_text(f"'{PAYLOAD}' does not appear to be an IPv4 or IPv6 address")
    expect(page.locator("#jobs img")).to_have_count(0)
    expect(page.locator("#select-queue")).to_have_value(IMG)
    expect_only_the_dashboards_scripts_ran(page, scripts)

    row.locator(".job_id a").click()  # the job's own page
    expect(page).to_have_url(re.compile(rf"/rq/0/view/job/{failed_job.id}$"))
    data = page.locator("#job-data")
    expect(data.locator(".description-scroll")).to_have_text(PAYLOAD)
    expect(data).to_contain_text(f"Origin queue:{IMG}")
    expect(data.locator("pre.exc_info")).to_contain_text(f"'{PAYLOAD}'")
    expect(page.locator("#requeue-job-btn")).to_be_visible()  # the dashboard's script ran: a failed job
    expect(data.locator("img")).to_have_count(0)
    expect_only_the_dashboards_scripts_ran(page, scripts)

    page.goto("/rq/0/view/workers")
    expect(page.locator("#workers tr[data-role=worker]").filter(has_text=IMG)).to_have_count(1)
    expect(page.locator("#workers img")).to_have_count(0)
    expect_only_the_dashboards_scripts_ran(page, scripts)


def test_a_queue_name_in_the_url_cannot_close_the_pages_script(admin_page: Page, scripts):
    page = admin_page
    page.goto(f"/rq/0/view/jobs/{quote(BREAKOUT, safe='')}/failed/8/asc/1")
    expect(page.locator("#select-queue")).to_have_value(BREAKOUT)
    expect(page.locator("#jobs")).to_contain_text("No jobs.")  # the page's script ran, and only it
    expect_only_the_dashboards_scripts_ran(page, scripts)


def answer_yes(page: Page) -> None:
    """Answer the dashboard's "Do you really want to …?" with Yes."""
    dialog = page.locator("#confirmation-modal")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Yes").click()
    expect(dialog).to_be_hidden()


def test_the_dashboard_polls_requeues_and_deletes_under_its_policy(app, admin_page: Page, scripts):
    page = admin_page
    page.emulate_media(reduced_motion="reduce")  # no fading: "Yes" is not clicked while the dialog still opens
    with app.app_context():
        connection = get_redis()
    queue = Queue("default", connection=connection)
    page.goto("/rq/0/view/jobs/default/failed/8/asc/1")
    expect(page.locator("#jobs")).to_contain_text("No jobs.")

    jobs = [queue.enqueue(ip_address, f"no address {n}") for n in range(3)]
    SimpleWorker([queue], connection=connection).work(burst=True)
    rows = page.locator("#jobs tr[data-role=job]")
    expect(rows).to_have_count(3)  # the list polls

    rows.filter(has_text=jobs[0].id).get_by_role("link", name="Requeue").click()
    expect(rows).to_have_count(2)
    assert jobs[0].get_status(refresh=True) == "queued"

    rows.filter(has_text=jobs[1].id).get_by_role("link", name="Delete").click()
    answer_yes(page)
    expect(rows).to_have_count(1)
    assert not Job.exists(jobs[1].id, connection=connection)

    page.get_by_role("link", name="Requeue All").click()
    answer_yes(page)
    expect(rows).to_have_count(0)
    assert jobs[2].get_status(refresh=True) == "queued"
    expect_only_the_dashboards_scripts_ran(page, scripts)
