"""Two-step sign-in, the rate limit per address, the idle timeout, signing out everywhere, and the audit trail of
it all — as a person (or an attacker) meets them through the pages. Codes are computed with pyotp, as an
authenticator app would."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pyotp
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, RecoveryCode, User
from app.records.entities import EntityInput, create_legal_entity
from tests.conftest import PASSWORD, TOTP_SECRET, log_in

SECRET_ON_PAGE = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')
RECOVERY_CODE = re.compile(r"<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>")


def code_at(secret: str, steps_from_now: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(timezone.utc)) + steps_from_now)


def password_step(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def enrol_on_security_page(client) -> tuple[str, list[str]]:
    """Turn two-step sign-in on from the Security page; the secret shown and the recovery codes."""
    page = client.get("/account/security/enrol")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'class="qr"' in html  # the QR code, inline SVG
    secret = SECRET_ON_PAGE.search(html).group(1)
    shown = client.post("/account/security/enrol", data={"code": code_at(secret)})
    assert shown.status_code == 200, shown.get_data(as_text=True)
    return secret, RECOVERY_CODE.findall(shown.get_data(as_text=True))


@pytest.fixture
def viewer_with_2fa(app, client_as):
    """The viewer turned two-step sign-in on; (secret, recovery codes). Signed out afterwards."""
    client = client_as("viewer")
    secret, codes = enrol_on_security_page(client)
    client.post("/logout")
    with app.app_context():
        db.session.scalar(select(User).where(User.email == "viewer@example.com")).totp_last_step = None
        db.session.commit()
    return secret, codes


# ---------------------------------------------------------------- enrolment and the second step
def test_a_user_turns_two_step_sign_in_on_and_then_needs_a_code(app, client, viewer_with_2fa):
    secret, codes = viewer_with_2fa
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        stored = set(db.session.scalars(select(RecoveryCode.code_hash)))
        assert len(stored) == 10 and not stored & set(codes)  # only hashes are kept
    response = password_step(client, "viewer@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/login/second-factor"
    assert client.get("/").status_code == 302  # the password alone signs nobody in
    assert client.post("/login/second-factor", data={"code": code_at(secret)}).headers["Location"] == "/"
    assert client.get("/").status_code == 200
    (login,) = audit(app, "user.login")[-1:]
    assert login.details["second_factor"] == "totp"


def test_a_wrong_code_is_refused(client, viewer_with_2fa):
    secret, _ = viewer_with_2fa
    password_step(client, "viewer@example.com")
    wrong = "000000" if code_at(secret) != "000000" else "111111"
    response = client.post("/login/second-factor", data={"code": wrong})
    assert response.status_code == 401 and b"That code is wrong or was used already" in response.data
    assert client.get("/").status_code == 302


def test_a_code_cannot_be_used_twice(app, viewer_with_2fa):
    secret, _ = viewer_with_2fa
    code = code_at(secret)
    first = app.test_client()
    password_step(first, "viewer@example.com")
    assert first.post("/login/second-factor", data={"code": code}).status_code == 302
    second = app.test_client()  # someone who saw the code over the shoulder, within its 30 seconds
    password_step(second, "viewer@example.com")
    replayed = second.post("/login/second-factor", data={"code": code})
    assert replayed.status_code == 401 and second.get("/").status_code == 302
    assert audit(app, "user.second_factor_replayed")
    previous = second.post("/login/second-factor", data={"code": code_at(secret, -1)})  # an earlier step: no
    assert previous.status_code == 401


def test_a_recovery_code_works_once(app, viewer_with_2fa):
    _, codes = viewer_with_2fa
    client = app.test_client()
    password_step(client, "viewer@example.com")
    response = client.post("/login/second-factor", data={"code": codes[0].upper().replace("-", " ")})
    assert response.status_code == 302
    assert b"9 left" in client.get("/").data
    client.post("/logout")
    again = app.test_client()
    password_step(again, "viewer@example.com")
    assert again.post("/login/second-factor", data={"code": codes[0]}).status_code == 401
    assert again.post("/login/second-factor", data={"code": codes[1]}).status_code == 302
    used = audit(app, "user.recovery_code_used")
    assert [entry.details["left"] for entry in used] == [9, 8]


def test_new_recovery_codes_replace_the_old_ones(app, client_as, viewer_with_2fa):
    _, old = viewer_with_2fa
    client = app.test_client()
    log_in_with(client, "viewer@example.com", viewer_with_2fa[0])
    refused = client.post("/account/security/recovery-codes", data={"password": "not my password"})
    assert refused.status_code == 422 and b"the current password is wrong" in refused.data
    new = RECOVERY_CODE.findall(client.post("/account/security/recovery-codes",
                                            data={"password": PASSWORD}).get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    other = app.test_client()
    password_step(other, "viewer@example.com")
    assert other.post("/login/second-factor", data={"code": old[2]}).status_code == 401
    assert other.post("/login/second-factor", data={"code": new[2]}).status_code == 302


def log_in_with(client, email: str, secret: str):
    """Password and the next unused code of `secret` (the step after the last one used)."""
    password_step(client, email)
    for offset in (0, 1):
        response = client.post("/login/second-factor", data={"code": code_at(secret, offset)})
        if response.status_code == 302:
            return response
    raise AssertionError(response.get_data(as_text=True))


def test_second_step_failures_count_toward_the_accounts_delays(app, client, viewer_with_2fa):
    secret, _ = viewer_with_2fa
    password_step(client, "viewer@example.com")
    wrong = "000000" if code_at(secret) != "000000" else "111111"
    for _ in range(app.config["LOGIN_FREE_ATTEMPTS"]):
        client.post("/login/second-factor", data={"code": wrong})
    response = client.post("/login/second-factor", data={"code": code_at(secret)})
    assert response.status_code == 401 and b"try again in" in response.data
    # and a right password does not clear them while the second step has not passed
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "viewer@example.com"))
        assert user.failed_logins >= app.config["LOGIN_FREE_ATTEMPTS"]


def test_the_second_step_waits_only_a_few_minutes(app, client, viewer_with_2fa):
    secret, _ = viewer_with_2fa
    password_step(client, "viewer@example.com")
    with client.session_transaction() as session:
        pending = session["signin"]
        session["signin"] = {**pending, "at": pending["at"] - app.config["SECOND_FACTOR_MINUTES"] * 60 - 1}
    response = client.post("/login/second-factor", data={"code": code_at(secret)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_a_user_turns_two_step_sign_in_off_with_the_password(app, client, viewer_with_2fa):
    log_in_with(client, "viewer@example.com", viewer_with_2fa[0])
    assert client.post("/account/security/disable", data={"password": "wrong one"}).status_code == 422
    assert client.post("/account/security/disable", data={"password": PASSWORD}).status_code == 303
    client.post("/logout")
    assert password_step(client, "viewer@example.com").headers["Location"] == "/"
    assert audit(app, "user.second_factor_disabled")


# ---------------------------------------------------------------- admins must have it
def test_an_admin_without_a_second_factor_sets_one_up_before_anything_else(app, client, runner):
    assert runner.invoke(args=["users", "create", "--email", "boss@example.com", "--role", "admin",
                               "--password", PASSWORD]).exit_code == 0
    response = password_step(client, "boss@example.com")
    assert response.headers["Location"] == "/login/enrol"
    for path in ("/", "/settings/users", "/account/security", "/rq/"):
        assert client.get(path).status_code == 302, path  # not signed in until enrolled
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "Admins sign in with a second factor" in page and "<svg" in page
    secret = SECRET_ON_PAGE.search(page).group(1)
    assert SECRET_ON_PAGE.search(client.get("/login/enrol").get_data(as_text=True)).group(1) == secret  # stable
    assert client.post("/login/enrol", data={"code": "12345"}).status_code == 422
    shown = client.post("/login/enrol", data={"code": code_at(secret)})
    assert shown.status_code == 200 and len(RECOVERY_CODE.findall(shown.get_data(as_text=True))) == 10
    assert client.get("/settings/users").status_code == 200
    assert audit(app, "user.second_factor_enabled")
    # an admin cannot turn it off
    refused = client.post("/account/security/disable", data={"password": PASSWORD})
    assert refused.status_code == 422 and b"cannot be turned off" in refused.data


def test_an_admin_of_one_legal_entity_needs_it_too(app, client, runner):
    with app.app_context():
        create_legal_entity(EntityInput(code="DE01", name="Demo GmbH", country="DE", currency="EUR"))
        db.session.commit()
    assert runner.invoke(args=["users", "create", "--email", "de@example.com", "--role", "admin", "--entity", "DE01",
                               "--password", PASSWORD]).exit_code == 0
    assert password_step(client, "de@example.com").headers["Location"] == "/login/enrol"
    assert client.get("/").status_code == 302


def test_a_signed_in_user_made_admin_signs_in_again_with_a_second_factor(app, admin_client, client_as, users):
    accountant = client_as("accountant")
    with app.app_context():
        from app.accounts import grant_role
        from app.audit import Actor
        from app.records.entities import get_legal_entity_by_code

        create_legal_entity(EntityInput(code="DE01", name="Demo GmbH", country="DE", currency="EUR"))
        grant_role(db.session.get(User, users["accountant"]), get_legal_entity_by_code("DE01"), "admin",
                   Actor.system("test"))  # a grant on top: no session ended by it
        db.session.commit()
    response = accountant.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert b"requires two-step sign-in" in accountant.get("/login").data


def test_the_cli_resets_a_lost_second_factor(app, runner, admin_client, users):
    assert admin_client.get("/").status_code == 200
    result = runner.invoke(args=["users", "reset-second-factor", "admin@example.com"])
    assert result.exit_code == 0 and "sets up a new one at the next sign-in" in result.output
    assert admin_client.get("/").status_code == 302  # their sessions ended
    client = app.test_client()
    assert password_step(client, "admin@example.com").headers["Location"] == "/login/enrol"
    (entry,) = audit(app, "user.second_factor_reset")
    assert entry.actor_label == "cli" and entry.subject_id == users["admin"]
    assert runner.invoke(args=["users", "reset-second-factor", "nobody@example.com"]).exit_code == 1


# ---------------------------------------------------------------- the rate limit per address
@pytest.fixture
def small_rate_limit(app):
    saved = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    yield
    app.config["LOGIN_RATE_LIMIT"] = saved


def test_too_many_sign_in_posts_from_one_address_get_429(app, users, small_rate_limit):
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(3):
        assert password_step(attacker, f"guess{_}@example.com", "wrong guess").status_code == 401
    limited = password_step(attacker, "viewer@example.com")  # even the right password
    assert limited.status_code == 429
    assert password_step(attacker, "viewer@example.com").status_code == 429
    assert b"Too many attempts to sign in or to reset a password came from your address" in limited.data
    assert attacker.get("/login").status_code == 200  # the page itself is not limited
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert password_step(elsewhere, "viewer@example.com").status_code == 302  # another address is not
    (entry,) = audit(app, "signin.rate_limited")  # once per address and minute, not per request
    assert entry.details["ip"] == "203.0.113.7"


def test_the_second_step_shares_the_addresss_budget(app, users, small_rate_limit):
    client = app.test_client()
    assert password_step(client, "admin@example.com").status_code == 302
    for _ in range(2):
        client.post("/login/second-factor", data={"code": "000000"})
    assert client.post("/login/second-factor", data={"code": code_at(TOTP_SECRET)}).status_code == 429


# ---------------------------------------------------------------- the audit trail says from where
def test_sign_in_events_carry_the_address_and_user_agent(app, users):
    agent = "Mozilla/5.0 (X11; Linux x86_64) " + "x" * 400
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT=agent)
    password_step(client, "nobody@example.com", "guess")
    password_step(client, "viewer@example.com", "guess")
    password_step(client, "admin@example.com")
    client.post("/login/second-factor", data={"code": code_at(TOTP_SECRET)})
    client.post(f"/settings/users/{users['accountant']}/edit", data={"role": "viewer", "active": "1"})
    client.post("/logout")
    entries = {e.action: e for e in reversed(audit_all(app))}
    for action in ("user.login_failed", "user.login", "user.updated", "user.logout"):
        assert entries[action].details["ip"] == "192.0.2.44", action
        assert entries[action].details["user_agent"] == agent[:256], action
    unknown = [e for e in audit(app, "user.login_failed") if e.subject_id is None]
    assert len(unknown) == 1 and unknown[0].details["email"] == "nobody@example.com"
    assert entries["user.updated"].details["changes"]["role"] == {"old": "accountant", "new": "viewer"}


def audit_all(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


# ---------------------------------------------------------------- sessions
def test_a_session_ends_after_the_idle_time(app, client_as):
    client = client_as("viewer")
    assert client.get("/").status_code == 200
    idle = app.config["SESSION_IDLE_MINUTES"]
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - idle * 60 + 30  # used 30 s before the limit: still fine
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - idle * 60 - 1
    response = client.get("/invoices")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/invoices")
    page = client.get("/login").get_data(as_text=True)
    assert f"You were signed out after {idle} minutes without activity." in page
    assert client.get("/").status_code == 302


def test_sign_out_everywhere_ends_the_other_browsers_sessions(app, client_as, users):
    laptop, phone = client_as("accountant"), client_as("accountant")
    assert phone.get("/").status_code == 200
    assert laptop.post("/account/security/sign-out-everywhere").headers["Location"] == "/login"
    assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 302
    (entry,) = audit(app, "user.signed_out_everywhere")
    assert entry.subject_id == users["accountant"] and entry.details["ip"]


def test_changing_ones_own_password_ends_the_other_sessions(app, client_as, users):
    here, elsewhere = client_as("accountant"), client_as("accountant")
    new = "a fresh and long passphrase"
    refused = here.post("/account/security/password",
                        data={"password": "not it at all", "new_password": new, "new_password_again": new})
    assert refused.status_code == 422 and b"the current password is wrong" in refused.data
    weak = here.post("/account/security/password",
                     data={"password": PASSWORD, "new_password": "password1234", "new_password_again": "password1234"})
    assert weak.status_code == 422 and b"most common" in weak.data
    changed = here.post("/account/security/password",
                        data={"password": PASSWORD, "new_password": new, "new_password_again": new})
    assert changed.status_code == 303
    assert here.get("/").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/").status_code == 302
    assert log_in(app.test_client(), "accountant@example.com", new).status_code == 302
    assert log_in(app.test_client(), "accountant@example.com").status_code == 401
    assert audit(app, "user.password_changed")[0].details["ip"]


def test_the_security_page_shows_the_state(client_as, admin_client):
    page = client_as("viewer").get("/account/security").get_data(as_text=True)
    assert "Turn on two-step sign-in" in page and "Sign out everywhere" in page
    page = admin_client.get("/account/security").get_data(as_text=True)
    assert "cannot turn two-step sign-in off" in page and "Make new recovery codes" in page


def test_the_users_page_shows_who_has_two_step_sign_in(admin_client, runner):
    assert runner.invoke(args=["users", "create", "--email", "boss@example.com", "--role", "admin",
                               "--password", PASSWORD]).exit_code == 0
    page = admin_client.get("/settings/users").get_data(as_text=True)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<td>([^<]+@example\.com)</td>.*?</tr>", page, re.S)}
    assert "not set up" in rows["boss@example.com"] and ">on<" in rows["admin@example.com"]
    assert ">off<" in rows["viewer@example.com"]


def test_behind_a_proxy_the_forwarded_address_is_the_clients(database_url, redis_url, app, users):
    from app import create_app
    from tests.conftest import make_config

    proxied = create_app(make_config(database_url, redis_url, PROXY_FIX_X_FOR=1))
    proxied.test_client_class = type(app.test_client())
    client = proxied.test_client()
    client.environ_base.update(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert password_step(client, "viewer@example.com").status_code == 302
    assert audit(app, "user.login")[-1].details["ip"] == "198.51.100.77"
