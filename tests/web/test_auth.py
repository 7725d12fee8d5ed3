"""Login, logout, throttling, roles and CSRF."""
import re

import pytest
from flask import Blueprint
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import AuditEntry, User
from app.web.decorators import role_required
from tests.conftest import PASSWORD, log_in, make_config


def test_login_page_is_served(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Log in to Arbill" in response.data


def test_admin_logs_in_and_sees_the_dashboard(client, users):
    response = log_in(client, "admin@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and b"admin@example.com" in page.data


def test_email_is_case_insensitive(client, users):
    assert log_in(client, "  Admin@Example.COM ").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, users):
    response = log_in(client, "admin@example.com", "wrong password")
    assert response.status_code == 401
    assert b"E-mail or password is wrong." in response.data
    assert client.get("/").status_code == 302  # still anonymous


def test_unknown_user_gets_the_same_message(client, users):
    response = log_in(client, "nobody@example.com")
    assert response.status_code == 401 and b"E-mail or password is wrong." in response.data


def test_repeated_failures_delay_the_account_instead_of_locking_it(app, client, users):
    for _ in range(app.config["LOGIN_FREE_ATTEMPTS"]):
        assert log_in(client, "viewer@example.com", "guess").status_code == 401
    response = log_in(client, "viewer@example.com")  # even the right password, until the delay has passed
    assert response.status_code == 401
    assert re.search(rb"Too many failed attempts for this account: try again in \d+ s\.", response.data)
    with app.app_context():
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.login_delay_started")) is not None
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.login_delayed")) is not None


def test_inactive_user_cannot_log_in(app, client, users):
    with app.app_context():
        db.session.get(User, users["viewer"]).active = False
        db.session.commit()
    response = log_in(client, "viewer@example.com")
    assert response.status_code == 401 and b"disabled" in response.data


def test_logout_needs_a_post_and_ends_the_session(admin_client):
    assert admin_client.get("/logout").status_code == 405
    response = admin_client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert admin_client.get("/").status_code == 302


def test_login_does_not_redirect_off_site(client, users):
    response = client.post("/login?next=https://evil.example/", data={"email": "viewer@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/login", data={"email": "viewer@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/login"


def test_session_cookie_is_httponly_and_samesite_lax(client, users):
    response = log_in(client, "admin@example.com")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_post_without_csrf_token_is_refused(client, users):
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert b"CSRF" in response.data
    assert client.get("/").status_code == 302  # not logged in


def test_a_logged_in_post_without_csrf_token_is_refused(admin_client):
    assert admin_client.post("/logout", csrf=False).status_code == 400
    assert admin_client.get("/").status_code == 200  # still logged in


_HX_HEADERS_TOKEN = re.compile(r"""<body hx-headers='\{"X-CSRFToken": "([^"]+)"\}'>""")


def test_htmx_requests_send_the_token_in_a_header(admin_client):
    # The token is signed with a timestamp, so compare by what the server accepts, not by text.
    page = admin_client.get("/").get_data(as_text=True)
    token = _HX_HEADERS_TOKEN.search(page).group(1)  # hx-headers on <body>: every HTMX request sends it
    assert admin_client.post("/logout", csrf=False, headers={"X-CSRFToken": "forged"}).status_code == 400
    assert admin_client.get("/").status_code == 200
    response = admin_client.post("/logout", csrf=False, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code in (200, 302)
    assert admin_client.get("/").status_code == 302  # logged out: the header token was accepted


@pytest.fixture
def app_with_role_views(database_url, redis_url, app):
    """A second app on the same database, with one view per role level."""
    extra = create_app(make_config(database_url, redis_url))
    bp = Blueprint("probe", __name__)
    for role in ("viewer", "accountant", "admin"):
        bp.add_url_rule(f"/probe/{role}", f"probe_{role}", role_required(role)(lambda role=role: role), methods=["GET"])
    extra.register_blueprint(bp)
    extra.test_client_class = type(app.test_client())
    return extra


@pytest.mark.parametrize(
    "role, allowed",
    [
        ("viewer", {"viewer"}),
        ("accountant", {"viewer", "accountant"}),
        ("admin", {"viewer", "accountant", "admin"}),
    ],
)
def test_roles_are_enforced_on_the_server(app_with_role_views, users, role, allowed):
    client = app_with_role_views.test_client()
    assert log_in(client, f"{role}@example.com").status_code == 302
    for level in ("viewer", "accountant", "admin"):
        expected = 200 if level in allowed else 403
        assert client.get(f"/probe/{level}").status_code == expected, (role, level)
