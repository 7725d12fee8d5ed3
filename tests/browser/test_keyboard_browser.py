"""Every action by keyboard, with the focus in sight: after signing in, only Tab, Enter, Space and Escape reach the
skip link, the main navigation, the Billing Run Agent and its dry run, a run's tabs and, at 390 px, the Menu
button; whatever has the focus shows a ring (a computed outline or box-shadow)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.billing.runs import execute_run
from app.extensions import db
from app.models import BillingRun

from tests.browser.test_login import log_in
from tests.conftest import TOTP_SECRET

FOCUSED = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || el.value || "").trim().slice(0, 60),
          label: el.getAttribute("aria-label") || "", name: el.getAttribute("name") || "",
          outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0, shadow: style.boxShadow,
          expanded: el.getAttribute("aria-expanded")};
}"""


def focused(page: Page) -> dict:
    return page.evaluate(FOCUSED)


def assert_focus_visible(page: Page) -> dict:
    now = focused(page)
    ring = (now["outline"] != "none" and now["outlineWidth"] > 0) or now["shadow"] not in ("none", "")
    assert ring, f"the focused {now['tag']} “{now['text'] or now['label']}” shows no focus indicator: {now}"
    return now


def tab_to(page: Page, matches, limit: int = 80) -> dict:
    """Press Tab until the focused element matches (a predicate over `focused`); each stop shows a ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = assert_focus_visible(page)
        if matches(now):
            return now
    raise AssertionError(f"Tab never reached the element; the focus is on {focused(page)}")


def text_is(text: str):
    return lambda now: now["text"] == text


@pytest.fixture
def signed_in(page: Page, demo_data):
    page.goto("/login")
    log_in(page, demo_data.admin_email, demo_data.admin_password, TOTP_SECRET)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def test_skip_link_navigation_and_a_dry_run_by_keyboard(app, signed_in: Page, screenshot):
    page = signed_in
    # The first Tab lands on the skip link, shown with its ring; Enter moves the focus to the page's content.
    page.keyboard.press("Tab")
    now = assert_focus_visible(page)
    assert (now["tag"], now["text"]) == ("a", "Skip to content")
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()
    screenshot(page, "keyboard-skip-link")
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"

    # The main navigation: a menu opens with Enter, Escape closes it, and its link goes where it says.
    page.goto("/")
    tab_to(page, text_is("Agents"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Definitions", exact=True)).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Definitions", exact=True)).to_be_hidden()
    assert focused(page)["text"] == "Agents"
    page.keyboard.press("Space")
    tab_to(page, text_is("Definitions"))
    screenshot(page, "keyboard-menu")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/agents$"))

    # The Billing Run Agent's dry run: tick Dry run with Space, press Run with Enter.
    tab_to(page, text_is("Billing Run Agent"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Billing Run Agent")).to_be_visible()
    tab_to(page, lambda now: now["name"] == "dry_run")
    page.keyboard.press("Space")
    expect(page.get_by_role("switch", name="Dry run")).to_be_checked()
    tab_to(page, lambda now: now["tag"] == "button" and now["text"] == "Run")
    screenshot(page, "keyboard-run-button")
    page.keyboard.press("Enter")
    expect(page.locator("#run-result")).to_contain_text("Dry run #1 started")
    with app.app_context():  # the worker's part: the run is done, so its page no longer polls
        execute_run(db.session.scalar(select(BillingRun.id)), inline=True)

    # The run's page, from the answer's link, and its Audit tab, reached and opened by keyboard.
    tab_to(page, lambda now: now["tag"] == "a" and now["text"].startswith("Dry run #1 started"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    tab_to(page, lambda now: now["text"] == "Audit")
    page.keyboard.press("Enter")
    expect(page.get_by_role("tab", name="Audit")).to_have_attribute("aria-selected", "true")


def test_the_phone_menu_button_opens_and_closes_by_keyboard(signed_in: Page, screenshot):
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    records = page.get_by_text("Records", exact=True)
    expect(records).to_be_hidden()  # folded behind the Menu button
    button = tab_to(page, text_is("Menu"))
    assert button["expanded"] == "false"
    page.keyboard.press("Enter")
    assert focused(page)["expanded"] == "true"
    expect(records).to_be_visible()
    screenshot(page, "keyboard-phone-menu")
    tab_to(page, text_is("Records"))
    page.keyboard.press("Escape")  # out of the menus: they fold again, the focus back on Menu
    now = focused(page)
    assert (now["text"], now["expanded"]) == ("Menu", "false")
    expect(records).to_be_hidden()
    page.keyboard.press("Space")
    tab_to(page, text_is("Records"))
    page.keyboard.press("Enter")
    tab_to(page, text_is("Invoices"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
