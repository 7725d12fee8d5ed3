"""Custom agents made in the app (issue 14 item 4), in Chromium: Agents > Create Agent, the AR Aging Reporter
template, name, settings and a Monday-morning schedule; the agent is created disabled, Test e-mails only the
tester (a worker does it, the row follows live), Enable, and the catalogue shows it with its triggers."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import AgentDefinition, AgentVersion
from tests.browser.test_csp_browser import WATCH_VIOLATIONS, violations
from tests.browser.test_walkthrough import log_in
from tests.conftest import ROOT


@pytest.fixture
def start_worker(mail_sink):
    started = []

    def start():
        env = {**os.environ, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mail_sink.port)}
        started.append(subprocess.Popen([sys.executable, "worker.py", "default"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def test_create_an_ar_aging_reporter_test_it_and_enable_it(app, page, demo_data, start_worker, mail_sink, screenshot):
    problems: list[str] = []
    page.add_init_script(WATCH_VIOLATIONS)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    log_in(page, demo_data)
    page.goto("/agents")
    expect(page.locator(".empty-state")).to_contain_text("No custom agents for")
    page.get_by_role("button", name="Create Agent").first.click()

    expect(page.get_by_role("heading", name="Create Agent")).to_be_visible()
    page.locator("article", has_text="AR Aging Reporter").get_by_role("button", name="Use this template").click()
    page.get_by_label("Name").fill("Weekly overdue")
    page.get_by_label(re.compile(r"^Schedule \(cron")).fill("0 8 * * 1")
    page.get_by_label(re.compile(r"^Recipients")).fill("not an address")
    page.get_by_role("button", name="Create (disabled)").click()
    expect(page.locator(".flash-error")).to_contain_text("Nothing was created")  # refused, with the field named
    with app.app_context():
        assert db.session.scalar(select(AgentDefinition).where(AgentDefinition.custom.is_(True))) is None
    page.get_by_label(re.compile(r"^Recipients")).fill("ar-team@example.com")
    page.get_by_role("button", name="Create (disabled)").click()

    expect(page.locator(".flash-success")).to_contain_text(f"Weekly overdue created for {demo_data.entity_code}, disabled")
    expect(page.get_by_role("heading", name="Weekly overdue")).to_be_visible()
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)  # disabled: only a test
    page.get_by_role("button", name="Test").click()
    row = page.locator("#run-result tr")
    expect(row).to_contain_text("waiting for a worker")
    start_worker()
    expect(row).to_contain_text(re.compile(r"succeeded"), timeout=45_000)
    expect(row).to_contain_text(demo_data.admin_email)
    screenshot(page, "custom-agent-tested")
    assert [m["To"] for m in mail_sink.messages()] == [demo_data.admin_email]  # the tester only, not the list

    page.get_by_role("tab", name="Configuration").click()
    page.get_by_role("button", name="Enable the Weekly overdue").click()
    expect(page.locator(".flash-success")).to_contain_text("Weekly overdue enabled")
    page.goto("/agents")
    row = page.locator("#agent-catalogue tbody tr", has_text="Weekly overdue")
    expect(row).to_contain_text("Custom · AR Aging Reporter")
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("A schedule fires")
    screenshot(page, "agent-catalogue")
    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.custom.is_(True)))
        versions = db.session.scalars(select(AgentVersion.summary).where(AgentVersion.agent_id == agent.id)
                                      .order_by(AgentVersion.version)).all()
        assert versions == ["created from the AR Aging Reporter template", "enabled"]
    assert violations(page) == [] and problems == []
