"""Password reset by e-mail, against a real SMTP server: the link works once, for a while, for the account it was
sent for; asking tells nobody which addresses have accounts; a reset ends every session and leaves the second
factor as it was."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from tests.conftest import PASSWORD, free_port, log_in

NEW_PASSWORD = "otter lantern quarry velvet"
ASKED = "If an account exists for that address, we've sent a link there"


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def ask_for_link(client, email: str, **kwargs):
    return client.post("/login/forgot", data={"email": email}, **kwargs)


def link_in(message) -> str:
    """The path of the reset link in an e-mail (the link itself is absolute)."""
    url = re.search(r"https?://\S+/login/reset/\S+", message.get_body(("plain",)).get_content()).group(0)
    assert urlsplit(url).netloc == "localhost"  # the test client's host: absolute, as a mail client needs
    return urlsplit(url).path


def reset(client, path: str, password: str = NEW_PASSWORD, again: str | None = None):
    return client.post(path, data={"new_password": password, "new_password_again": again or password})


@pytest.fixture
def mail_interval(app):
    """Every request may send its e-mail (the production default allows one per address and minute)."""
    saved = app.config["PASSWORD_RESET_MAIL_INTERVAL_SECONDS"]
    app.config["PASSWORD_RESET_MAIL_INTERVAL_SECONDS"] = 0
    yield
    app.config["PASSWORD_RESET_MAIL_INTERVAL_SECONDS"] = saved


def test_the_reset_link_works_once_and_only_once(app, client, users, mail_sink):
    login = client.get("/login").get_data(as_text=True)
    assert 'href="/login/forgot"' in login and "Forgot your password?" in login
    assert client.get("/login/forgot").status_code == 200

    answer = ask_for_link(client, "Viewer@Example.com ", follow_redirects=True)
    assert answer.status_code == 200 and ASKED in answer.get_data(as_text=True)
    (message,) = mail_sink.messages()
    assert message["To"] == "viewer@example.com" and message["Subject"] == "Reset your Arbill password"
    path = link_in(message)

    form = client.get(path)
    assert form.status_code == 200 and "viewer@example.com" in form.get_data(as_text=True)
    weak = reset(client, path, "password1234")
    assert weak.status_code == 422 and "most common" in weak.get_data(as_text=True)  # the Security page's rule
    assert reset(client, path, NEW_PASSWORD, "something else entirely").status_code == 422
    done = reset(client, path)
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")

    assert log_in(app.test_client(), "viewer@example.com", PASSWORD).status_code == 401
    assert log_in(app.test_client(), "viewer@example.com", NEW_PASSWORD).status_code == 302

    again = client.get(path)
    assert again.status_code == 410
    assert "does not work any more" in again.get_data(as_text=True) and 'href="/login/forgot"' in again.get_data(as_text=True)
    assert reset(client, path, "another fine passphrase").status_code == 410
    assert log_in(app.test_client(), "viewer@example.com", NEW_PASSWORD).status_code == 302
    (entry,) = audit(app, "user.password_reset")
    assert entry.subject_id == users["viewer"] and entry.details["ip"]


def test_an_unknown_address_gets_the_identical_answer_and_no_mail(app, client, users, mail_sink, mail_interval):
    known = ask_for_link(client, "viewer@example.com")
    unknown = ask_for_link(client, "nobody@example.com")
    malformed = ask_for_link(client, "not an address")
    for answer in (unknown, malformed):
        assert (answer.status_code, answer.headers["Location"]) == (known.status_code, known.headers["Location"])
        assert answer.get_data() == known.get_data()
    pages = [client.get(answer.headers["Location"]) for answer in (known, unknown, malformed)]
    assert pages[0].status_code == 200 and ASKED in pages[0].get_data(as_text=True)
    assert all(page.get_data() == pages[0].get_data() and page.status_code == 200 for page in pages)
    for answer in (known, unknown, malformed):
        answer.close()  # (a server closes every answer it sent: that is when a reset e-mail leaves)
    assert [m["To"] for m in mail_sink.messages()] == ["viewer@example.com"]
    requested = audit(app, "user.password_reset_requested")
    assert [(e.subject_id, e.details["mailed"]) for e in requested] == [(users["viewer"], True), (None, False),
                                                                       (None, False)]


def test_disabled_and_invited_accounts_get_no_mail_and_the_same_answer(app, client, users, mail_sink, mail_interval,
                                                                       admin_client):
    admin_client.post(f"/settings/users/{users['accountant']}/edit", data={"role": "accountant"})  # not active
    admin_client.post("/settings/users/invite", data={"email": "invited@example.com", "role": "viewer"})
    sent_before = len(mail_sink.messages())
    for email in ("accountant@example.com", "invited@example.com"):
        answer = ask_for_link(client, email, follow_redirects=True)
        assert answer.status_code == 200 and ASKED in answer.get_data(as_text=True)
    assert len(mail_sink.messages()) == sent_before


def test_one_mail_per_address_and_interval(app, client, users, mail_sink):
    for _ in range(3):
        assert ask_for_link(client, "viewer@example.com", follow_redirects=True).status_code == 200
    assert len(mail_sink.messages()) == 1


def test_an_expired_or_tampered_link_is_refused_clearly(app, client, users, mail_sink, monkeypatch):
    ask_for_link(client, "viewer@example.com", follow_redirects=True)
    path = link_in(mail_sink.messages()[0])
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    refused = client.get(tampered)
    assert refused.status_code == 410 and "does not work any more" in refused.get_data(as_text=True)
    monkeypatch.setitem(app.config, "PASSWORD_RESET_MAX_AGE_SECONDS", -1)  # every link is older than that
    expired = client.get(path)
    assert expired.status_code == 410 and "has expired" in expired.get_data(as_text=True)
    assert 'href="/login/forgot"' in expired.get_data(as_text=True)
    assert reset(client, path).status_code == 410
    assert log_in(app.test_client(), "viewer@example.com", PASSWORD).status_code == 302


def test_the_link_stops_working_once_the_password_changes(app, client, client_as, users, mail_sink):
    ask_for_link(client, "viewer@example.com", follow_redirects=True)
    path = link_in(mail_sink.messages()[0])
    viewer = client_as("viewer")
    changed = viewer.post("/account/security/password", data={"password": PASSWORD, "new_password": NEW_PASSWORD,
                                                               "new_password_again": NEW_PASSWORD})
    assert changed.status_code == 303
    assert client.get(path).status_code == 410
    assert reset(client, path, "another fine passphrase").status_code == 410
    assert log_in(app.test_client(), "viewer@example.com", NEW_PASSWORD).status_code == 302


def test_a_reset_ends_every_session_and_an_admin_still_needs_the_second_factor(app, admin_client, users, mail_sink):
    assert admin_client.get("/").status_code == 200
    stranger = app.test_client()
    ask_for_link(stranger, "admin@example.com", follow_redirects=True)
    assert reset(stranger, link_in(mail_sink.messages()[0])).status_code == 303

    assert admin_client.get("/").status_code == 302  # the session from before the reset ended
    fresh = app.test_client()
    password_only = fresh.post("/login", data={"email": "admin@example.com", "password": NEW_PASSWORD})
    assert password_only.headers["Location"].endswith("/login/second-factor")
    assert fresh.get("/").status_code == 302  # not signed in on the password alone
    with app.app_context():
        from app.models import User

        admin = db.session.get(User, users["admin"])
        assert admin.has_second_factor and admin.totp_secret
    assert log_in(app.test_client(), "admin@example.com", NEW_PASSWORD).headers["Location"].endswith("/")


def test_a_signed_in_browser_using_a_link_is_signed_out(app, client_as, users, mail_sink):
    viewer = client_as("viewer")
    ask_for_link(app.test_client(), "viewer@example.com", follow_redirects=True)
    assert reset(viewer, link_in(mail_sink.messages()[0])).status_code == 303
    assert viewer.get("/").status_code == 302


def test_asking_for_links_is_rate_limited_like_signing_in(app, users, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
    asker = app.test_client()
    asker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for n in range(3):
        assert ask_for_link(asker, f"guess{n}@example.com").status_code == 303
    assert ask_for_link(asker, "viewer@example.com").status_code == 429
    assert asker.get("/login/forgot").status_code == 200


def test_when_the_mail_server_is_down_the_answer_is_the_same_and_the_failure_audited(app, client, users,
                                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", free_port())  # nobody listens there
    answer = ask_for_link(client, "viewer@example.com", follow_redirects=True)
    assert answer.status_code == 200 and ASKED in answer.get_data(as_text=True)
    (failed,) = audit(app, "user.password_reset_mail_failed")
    assert failed.subject_id == users["viewer"]


def test_links_use_base_url_when_it_is_set(app, client, users, mail_sink, monkeypatch):
    monkeypatch.setitem(app.config, "BASE_URL", "https://billing.example.com/arbill/")
    ask_for_link(client, "viewer@example.com", follow_redirects=True)
    body = mail_sink.messages()[0].get_body(("plain",)).get_content()
    assert re.search(r"https://billing\.example\.com/arbill/login/reset/\S+", body), body
