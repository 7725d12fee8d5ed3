"""Security headers on every response (app/web/security.py), production cookies, CSV formula injection.

The browser's side (the pages run under the policy without a violation) is tests/browser/test_csp_browser.py.
"""
from __future__ import annotations

import csv
import io
import re
from ipaddress import ip_address
from pathlib import Path

import pytest
from rq import Queue, SimpleWorker

from app.extensions import db
from app.queues import get_redis
from tests.conftest import PASSWORD, log_in, make_config
from tests.factories import make_entity
from tests.integration.test_aging import AS_OF, add_invoice
from tests.unit.test_config import GOOD_KEY

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"


def policy_of(response) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";"))


def assert_protected(response, url):
    assert response.headers["X-Content-Type-Options"] == "nosniff", url
    assert response.headers["X-Frame-Options"] == "DENY", url
    assert response.headers["Referrer-Policy"] == "same-origin", url
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin", url
    assert "camera=()" in response.headers["Permissions-Policy"], url


@pytest.fixture
def aging_data(app):
    with app.app_context():
        entity = make_entity()
        add_invoice(entity, "Bolt", "58.53", days=3)
        db.session.commit()


def test_every_kind_of_response_carries_the_policy_and_the_headers(app, client, client_as, aging_data):
    viewer = client_as("viewer")
    responses = {
        "login page": client.get("/login"),
        "redirect to login": client.get("/"),
        "not found": client.get("/no-such-page"),
        "static file": client.get("/static/arbill.js"),
        "page": viewer.get("/"),
        "htmx partial": viewer.get(f"/reports/aging?as_of={AS_OF}", headers={"HX-Request": "true"}),
        "csv export": viewer.get(f"/reports/aging.csv?as_of={AS_OF}"),
        "forbidden": viewer.get("/settings/users"),
        "csrf refusal": viewer.post("/logout", csrf=False),
    }
    assert responses["forbidden"].status_code == 403 and responses["csrf refusal"].status_code == 400
    for what, response in responses.items():
        assert_protected(response, what)
        policy = policy_of(response)
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", what
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'", what
        assert policy["default-src"] == "'self'" and policy["form-action"] == "'self'", what
        assert "unsafe" not in response.headers["Content-Security-Policy"], what
        assert "Strict-Transport-Security" not in response.headers, what  # testing is plain HTTP


def test_hsts_is_sent_when_the_configuration_says_so(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "HSTS_SECONDS", 31536000)
    for url in ("/login", "/no-such-page", "/static/arbill.css"):
        assert client.get(url).headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", url


def test_the_rq_dashboard_keeps_its_own_policy_and_gets_the_other_headers(app, admin_client):
    with app.app_context():
        queue = Queue("default", connection=get_redis())
        job = queue.enqueue(ip_address, "not an address")
        SimpleWorker([queue], connection=get_redis()).work(burst=True)
    for url in ("/rq/", f"/rq/0/view/job/{job.id}"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert policy_of(response)["script-src"].startswith("'nonce-"), url
        assert policy_of(response)["frame-ancestors"] == "'none'", url
        assert_protected(response, url)
    assert admin_client.get("/rq/0/view/job/no-such-job").status_code == 404


def test_a_mailbox_attachment_stays_sandboxed(app, admin_client, mail_sink):
    from tests.web.test_mailbox_pages import only_message, send_invoice_mail

    send_invoice_mail(app)
    response = admin_client.get(f"/mailbox/{only_message(mail_sink)}/attachment/1")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert_protected(response, "attachment")


# Markup the policy refuses: inline script, `on…=` handlers, htmx's eval'd `hx-on`, `style` attributes and
# blocks, `javascript:` URLs. The RQ dashboard's own templates run under its own policy (nonces); the
# invoice document is rendered by WeasyPrint, never served as a page.
REFUSED = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"text/template\")[^>]*>|\son[a-z]+\s*=|\shx-on|"
                     r"\sstyle\s*=|<style\b|javascript:|\shx-vals\s*=\s*['\"]js:", re.IGNORECASE)


def test_no_template_has_markup_the_policy_refuses():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        relative = path.relative_to(TEMPLATES).as_posix()
        if relative.startswith(("rq_dashboard/", "documents/")):
            continue
        text = re.sub(r"{#.*?#}", "", path.read_text(), flags=re.DOTALL)
        found += [f"{relative}: {match.group().strip()}" for match in REFUSED.finditer(text)]
    assert found == [], "move these to app/static/arbill.js or arbill.css: " + "; ".join(found)


def test_the_refused_markup_pattern_finds_what_it_is_for():
    for markup in ('<script>alert(1)</script>', '<a onclick="x()">', '<div hx-on::after-request="x">',
                   '<p style="color: red">', '<style>p {}</style>', '<a href="javascript:x()">'):
        assert REFUSED.search(markup), markup
    for markup in ('<script src="/static/arbill.js" defer></script>', '<p class="muted">', '<form data-confirm="Sure?">'):
        assert not REFUSED.search(markup), markup


# ------------------------------------------------------------------ cookies
def production_like(monkeypatch, database_url, redis_url):
    """An app with ProductionConfig's settings on the test database."""
    import config as configuration
    from app import create_app
    from tests.conftest import CSRFClient

    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("BASE_URL", "https://billing.example.com")
    production = configuration.ProductionConfig()
    settings = {key: getattr(production, key) for key in dir(production) if key.isupper()}
    settings.pop("SQLALCHEMY_DATABASE_URI"), settings.pop("REDIS_URL")
    application = create_app(make_config(database_url, redis_url, **settings))
    application.test_client_class = CSRFClient
    return application


def set_cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_production_signs_in_with_secure_httponly_samesite_cookies_and_hsts(monkeypatch, database_url, redis_url,
                                                                            app, users):
    application = production_like(monkeypatch, database_url, redis_url)
    assert not application.config["TESTING"] and application.config["HSTS_SECONDS"] == 365 * 24 * 3600
    client = application.test_client()
    page = client.get("/login", base_url="https://localhost")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    # Over HTTPS, CSRF protection also wants a same-origin Referer.
    response = client.post("/login", data={"email": "viewer@example.com", "password": PASSWORD, "remember": "y"},
                           base_url="https://localhost", csrf=False,
                           headers={"X-CSRFToken": token, "Referer": "https://localhost/login"})
    assert response.status_code == 302, response.get_data(as_text=True)
    cookies = set_cookies(response)
    assert "session" in cookies and "remember_token" not in cookies  # no remember-me (README, "Signing in")
    attributes = {part.strip().lower() for part in cookies["session"].split(";")}
    assert {"secure", "httponly", "samesite=lax"} <= attributes, cookies["session"]
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_development_cookies_are_httponly_and_samesite_but_work_over_plain_http(client, users):
    response = log_in(client, "viewer@example.com")
    attributes = {part.strip().lower() for part in set_cookies(response)["session"].split(";")}
    assert {"httponly", "samesite=lax"} <= attributes and "secure" not in attributes


# ------------------------------------------------------------------ CSV formula injection
FORMULAS = ['=HYPERLINK("http://x")', "@SUM(1)", "+1+1", "-2+3", "\tTab"]


def test_the_aging_csv_shows_formula_like_names_as_text_and_amounts_as_numbers(app, admin_client):
    with app.app_context():
        entity = make_entity()
        for n, name in enumerate(FORMULAS):
            add_invoice(entity, name, f"{n + 1}.50", days=3)
        db.session.commit()
    response = admin_client.get(f"/reports/aging.csv?entity=DE01&as_of={AS_OF}")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    by_name = {row[1]: row for row in rows[1:]}
    assert set(by_name) == {"'" + name for name in FORMULAS} | {"Total"}
    assert by_name["'@SUM(1)"][2:] == ["0.00", "2.50", "0.00", "0.00", "0.00", "2.50"]
    assert not any(cell[:1] in "=+-@\t\r" for row in rows for cell in row[:2] if cell)
