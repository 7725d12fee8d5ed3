"""Forgot the password: ask for a link on the sign-in page, open it from the e-mail, set a new password, sign in
with it (and the second factor, which the reset leaves in place)."""
from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.browser.test_login import expect_login_page, log_in
from tests.conftest import TOTP_SECRET

NEW_PASSWORD = "otter lantern quarry velvet"


def wait_for_mail(mail_sink, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages = mail_sink.messages()
        if messages:
            return messages
        time.sleep(0.1)
    raise AssertionError("no e-mail reached the SMTP server")


def test_forgot_password_from_the_mail_to_signing_in(page: Page, live_server, demo_data, mail_sink, screenshot):
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("E-mail").fill(demo_data.admin_email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account exists for that address, we've sent a link")
    screenshot(page, "password-reset-requested")

    (message,) = wait_for_mail(mail_sink)
    assert message["To"] == demo_data.admin_email
    link = re.search(r"http://\S+/login/reset/\S+", message.get_body(("plain",)).get_content()).group(0)
    assert link.startswith(live_server)
    page.goto(link)
    expect(page.get_by_role("heading", name="Set a new password")).to_be_visible()
    page.locator("input[name=new_password]").fill(NEW_PASSWORD)
    page.locator("input[name=new_password_again]").fill(NEW_PASSWORD)
    screenshot(page, "password-reset-form")
    page.get_by_role("button", name="Set the new password").click()

    expect_login_page(page)
    expect(page.get_by_role("status")).to_contain_text("Your new password is set")
    log_in(page, demo_data.admin_email, demo_data.admin_password)
    expect(page.get_by_role("alert")).to_contain_text("E-mail or password is wrong.")
    log_in(page, demo_data.admin_email, NEW_PASSWORD, TOTP_SECRET)  # the second factor is still asked for
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto(link)  # used once: never again
    expect(page.get_by_role("alert")).to_contain_text("does not work any more")
    expect(page.get_by_role("button", name="Ask for a new link")).to_be_visible()
