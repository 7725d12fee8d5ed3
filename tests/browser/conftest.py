"""Browser tests: the app served over HTTP, driven by Debian's Chromium through Playwright.

Fixtures (reuse them in every screen's tests):

- `live_server` (session): the session `app` served on 127.0.0.1:<free port>; yields the base URL,
  e.g. "http://127.0.0.1:41234" (no trailing slash).
- `browser` (session): a Playwright Chromium `Browser` (/usr/bin/chromium, headless). Skips —
  an error under CI=true — when Chromium is not installed.
- `page` (function): a fresh context (1280x900, base_url = live_server, 10 s timeouts) and page;
  `page.goto("/login")` works. Closed after the test.
- `demo_data` (function): the demo data (`app.demo.seed_demo(today)`), committed; yields the
  `DemoResult` (admin_email, admin_password, entity_code, contracts). The demo admin is enrolled with
  tests.conftest.TOTP_SECRET (admins sign in with a second factor).
- `screenshot` (function): `shot(page, name)` saves a full-page PNG to <repo>/screenshots/<name>.png
  and returns its path.

Every test under tests/browser is marked `browser` (`pytest -m "not browser"` leaves them out).
The root conftest empties the tables and Redis after each test, since `page` uses `app`.
"""
from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1280, "height": 900}

BROWSER_DIR = Path(__file__).resolve().parent
REPO_ROOT = BROWSER_DIR.parent.parent
SCREENSHOTS_DIR = REPO_ROOT / "screenshots"


def pytest_collection_modifyitems(config, items):
    """Mark every test in this folder (and below) as `browser`."""
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(BROWSER_DIR):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def live_server(app):
    """Serve the test app over HTTP in a daemon thread; yields the base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="arbill-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium`")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()
    try:
        yield new_page
    finally:
        context.close()


@pytest.fixture
def demo_data(app):
    from app.accounts import find_user
    from app.demo import seed_demo
    from app.extensions import db
    from tests.conftest import enrol_known_secret

    with app.app_context():
        result = seed_demo(date.today())
        enrol_known_secret(find_user(result.admin_email))
        db.session.commit()
    return result


@pytest.fixture
def screenshot():
    def shot(page, name: str) -> Path:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot
