"""Logging in and out in a real browser."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.conftest import TOTP_SECRET, totp_code

LOGIN_URL = re.compile(r"/login(\?.*)?$")


def log_in(page: Page, email: str, password: str, totp_secret: str | None = None) -> None:
    """Sign in; with `totp_secret` (an admin's, as tests/conftest.py enrols them) also the second step."""
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    if totp_secret:
        page.get_by_label("Authentication code").fill(totp_code(totp_secret))
        page.get_by_role("button", name="Verify").click()


def expect_login_page(page: Page) -> None:
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", name="Log in to Arbill")).to_be_visible()


def test_log_in_and_out(page: Page, live_server, demo_data, screenshot):
    page.goto("/")
    expect_login_page(page)
    expect(page.get_by_role("status")).to_have_text("Please log in to continue.")
    screenshot(page, "login")

    log_in(page, demo_data.admin_email, demo_data.admin_password)
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    screenshot(page, "login-second-factor")
    page.get_by_label("Authentication code").fill(totp_code(TOTP_SECRET))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{live_server}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    header = page.locator("header.topbar")
    expect(header).to_contain_text(demo_data.admin_email)
    screenshot(page, "dashboard")

    header.get_by_role("button", name="Log out").click()

    expect_login_page(page)
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(page.locator("header.topbar")).not_to_contain_text(demo_data.admin_email)
    page.goto("/")
    expect_login_page(page)


def test_wrong_password_shows_an_error(page: Page, demo_data):
    page.goto("/login")
    log_in(page, demo_data.admin_email, "not-the-password")

    expect_login_page(page)
    expect(page.get_by_role("alert")).to_contain_text("E-mail or password is wrong.")
    expect(page.get_by_role("heading", name="Dashboard")).to_have_count(0)


def test_htmx_is_served_from_our_static_files(page: Page, live_server):
    # Offline proof: every request that does not go to our server is aborted and recorded.
    foreign: list[str] = []
    errors: list[str] = []

    def only_ours(route):
        if route.request.url.startswith(live_server + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_ours)
    page.on("pageerror", lambda error: errors.append(str(error)))
    with page.expect_response(re.compile(r"/static/vendor/htmx-[\d.]+(\.min)?\.js$")) as htmx_response:
        page.goto("/login")
    assert htmx_response.value.ok
    assert htmx_response.value.url.startswith(live_server + "/static/")

    assert page.evaluate("typeof window.htmx") == "object"
    version = page.evaluate("window.htmx.version")
    assert version.startswith("2."), version
    assert foreign == []
    assert errors == []
