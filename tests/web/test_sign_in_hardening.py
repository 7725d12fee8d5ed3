"""Sign-in under attack: the growing delays cannot be raced and lock nobody out for good, unknown addresses look
like known ones, sessions end with a password change, a logout or a role change, and one rule for addresses and
passwords."""
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.accounts import AccountError, check_password_rule, create_user
from app.audit import Actor
from app.extensions import db
from app.models import AuditEntry, User
from app.models.types import utcnow
from app.signin import _dummy_hash
from tests.conftest import PASSWORD, log_in

ADMIN = Actor.system("test")


def _attempt_in_parallel(app, attempts: list[tuple[str, str]]) -> list[int]:
    """Send every (email, password) login at the same moment, each from its own client; status codes."""
    start = threading.Barrier(len(attempts))
    codes: list[int] = [0] * len(attempts)

    def attempt(index: int, email: str, password: str) -> None:
        client = app.test_client()
        client.csrf_token()
        start.wait()
        codes[index] = log_in(client, email, password).status_code

    threads = [threading.Thread(target=attempt, args=(i, *a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return codes


def test_parallel_wrong_passwords_cannot_race_past_the_delays(app, users):
    """Each attempt is counted, and the delay it would cause set, atomically before its password is checked: of 40 at
    once only the free attempts and one per delay that passed meanwhile are checked; the rest are refused unchecked."""
    codes = _attempt_in_parallel(app, [("viewer@example.com", f"wrong guess {i}") for i in range(40)])
    assert codes == [401] * 40
    with app.app_context():
        checked = db.session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.action == "user.login_failed"))
        refused = db.session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.action == "user.login_delayed"))
        free = app.config["LOGIN_FREE_ATTEMPTS"]
        assert free <= checked <= free + 4 and checked + refused == 40, (checked, refused)
        user = db.session.get(User, users["viewer"])
        assert user.failed_logins == checked and user.login_delayed_until is not None


def _wait_passes(app, user_id: int) -> None:
    """The account's delay runs out (as if its seconds had passed)."""
    with app.app_context():
        user = db.session.get(User, user_id)
        user.login_delayed_until = utcnow() - timedelta(seconds=1)
        db.session.commit()


def test_an_attackers_failures_do_not_keep_the_right_password_out(app, client, users):
    """Delays grow (1, 2, 4 … s, capped) but never lock: after the wait, the right password signs in."""
    attacker, owner = app.test_client(), app.test_client()
    waits = []
    for _ in range(app.config["LOGIN_FREE_ATTEMPTS"] + 4):
        _wait_passes(app, users["viewer"])
        assert log_in(attacker, "viewer@example.com", "wrong guess").status_code == 401
        with app.app_context():
            user = db.session.get(User, users["viewer"])
            waits.append((user.login_delayed_until - user.last_failed_login_at).total_seconds()
                         if user.login_delayed_until else 0)
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16], waits
    refused = log_in(owner, "viewer@example.com")
    assert refused.status_code == 401 and b"try again in" in refused.data  # not checked while it waits
    _wait_passes(app, users["viewer"])
    assert log_in(owner, "viewer@example.com").status_code == 302
    with app.app_context():
        user = db.session.get(User, users["viewer"])
        assert (user.failed_logins, user.login_delayed_until) == (0, None)  # the success cleared them


def test_the_delay_is_capped(app, users):
    with app.app_context():
        user = db.session.get(User, users["viewer"])
        user.failed_logins, user.last_failed_login_at = 60, utcnow()
        db.session.commit()
    assert log_in(app.test_client(), "viewer@example.com", "wrong guess").status_code == 401
    with app.app_context():
        user = db.session.get(User, users["viewer"])
        assert (user.login_delayed_until - user.last_failed_login_at).total_seconds() == \
            app.config["LOGIN_DELAY_MAX_SECONDS"]


def test_unknown_addresses_get_the_same_answer_and_the_same_work(app, client, users):
    known = log_in(client, "viewer@example.com", "wrong guess").get_data(as_text=True)
    unknown = log_in(client, "nobody@example.com", "wrong guess").get_data(as_text=True)
    invalid = log_in(client, '"<img src=x>"@example.com', "wrong guess").get_data(as_text=True)
    message = "E-mail or password is wrong."
    assert message in known and message in unknown and message in invalid
    with app.app_context():
        real = db.session.get(User, users["viewer"]).password_hash
    assert _dummy_hash().split("$")[0] == real.split("$")[0], "the dummy hash costs what a real one costs"


def test_unknown_addresses_are_delayed_like_accounts(app, users):
    """After the free attempts a known address answers "try again in N s": so does one without an account."""
    for address in ("viewer@example.com", "nobody@example.com"):
        client = app.test_client()
        answers = [log_in(client, address, "wrong guess").get_data(as_text=True)
                   for _ in range(app.config["LOGIN_FREE_ATTEMPTS"] + 3)]
        assert all("E-mail or password is wrong." in a for a in answers[:app.config["LOGIN_FREE_ATTEMPTS"]])
        delayed = [a for a in answers if "Too many failed attempts for this account: try again in" in a]
        assert delayed, address  # (the delays of 1, 2 and 4 s: at least one is still running at the next attempt)


def test_failed_logins_decay_after_a_quiet_period(app, client, users):
    with app.app_context():
        user = db.session.get(User, users["viewer"])
        user.failed_logins = app.config["LOGIN_FREE_ATTEMPTS"] + 2
        user.last_failed_login_at = utcnow() - timedelta(seconds=app.config["LOGIN_FAILURE_DECAY_SECONDS"] + 1)
        db.session.commit()
    assert log_in(client, "viewer@example.com", "wrong guess").status_code == 401
    assert log_in(client, "viewer@example.com").status_code == 302  # the old failures had decayed
    with app.app_context():
        user = db.session.get(User, users["viewer"])
        user.failed_logins = app.config["LOGIN_FREE_ATTEMPTS"] + 2
        user.last_failed_login_at = utcnow()
        db.session.commit()
    other = app.test_client()
    assert log_in(other, "viewer@example.com", "wrong guess").status_code == 401
    assert log_in(other, "viewer@example.com").status_code == 401  # recent failures still count


# ---------------------------------------------------------------- sessions
def _stolen_copy(app, client):
    """A second browser holding a copy of `client`'s cookies (session and remember-me)."""
    thief = app.test_client()
    for cookie in client._cookies.values():
        thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief


def test_logout_ends_every_copy_of_the_session(app, client_as):
    owner = client_as("accountant")
    thief = _stolen_copy(app, owner)
    assert thief.get("/").status_code == 200
    owner.post("/logout")
    assert thief.get("/").status_code == 302


def test_a_password_change_ends_the_sessions(app, admin_client, client_as, users):
    owner = client_as("viewer")
    stolen = _stolen_copy(app, owner)
    assert stolen.get("/").status_code == 200
    response = admin_client.post(f"/settings/users/{users['viewer']}/edit",
                                 data={"role": "viewer", "active": "1", "password": "a brand new passphrase"})
    assert response.status_code == 302
    for browser in (owner, stolen):
        assert browser.get("/").status_code == 302
    assert log_in(app.test_client(), "viewer@example.com", "a brand new passphrase").status_code == 302


def test_a_remember_me_cookie_signs_nobody_in(app, client, users):
    """There is no remember-me: a cookie Flask-Login would accept (the right id and session version) is not a
    session, since it never passed this sign-in (nor its second factor, nor the idle timeout)."""
    from flask_login.utils import encode_cookie

    with app.app_context():
        admin = db.session.get(User, users["admin"])
        with app.test_request_context():
            value = encode_cookie(admin.get_id())
    client.set_cookie("remember_token", value)
    for _ in range(2):
        response = client.get("/")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_role_change_ends_the_sessions(app, admin_client, client_as, users):
    accountant = client_as("accountant")
    assert admin_client.post(f"/settings/users/{users['accountant']}/edit",
                             data={"role": "viewer", "active": "1"}).status_code == 302
    assert accountant.get("/").status_code == 302
    assert log_in(app.test_client(), "accountant@example.com").status_code == 302  # a new login works


def test_a_session_cookie_from_before_session_versions_is_not_accepted(app, client, users):
    """Sessions signed with only the user id (the old format) or a forged version do not log in."""
    for forged in (str(users["admin"]), f"{users['admin']}:999", f"{users['admin']}:²", "99999999999:1"):
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = forged, True
        assert client.get("/").status_code == 302, forged


# ---------------------------------------------------------------- one rule for addresses and passwords
@pytest.mark.parametrize("address", [
    "admin@sec.test", "x@localhost", '"<img/src/onerror=alert(document.domain)>"@x.example', "a@b",
    "Ann <ann@example.com>", "ann@[127.0.0.1]", "ann@example.com\r\nBcc: all@example.com",
])
def test_an_address_the_cli_accepts_is_one_that_can_log_in(app, runner, client, address):
    result = runner.invoke(args=["users", "create", "--email", address, "--role", "admin", "--password", PASSWORD])
    assert result.exit_code == 1 and "e-mail address" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_unusual_but_valid_addresses_are_accepted_everywhere(app, runner, client):
    for address in ("o'brien+billing@sub.example.org", "ANN.Lee@Example.DE"):
        result = runner.invoke(args=["users", "create", "--email", address, "--role", "viewer", "--password", PASSWORD])
        assert result.exit_code == 0, result.output
        assert log_in(app.test_client(), address).status_code == 302


@pytest.mark.parametrize("password, reason", [
    ("12345678", "at least 12 characters"), ("password", "at least 12 characters"),
    (" " * 8, "cannot be blank"), (" " * 14, "cannot be blank"),
    ("password1234", "most common"), ("123456789012", "most common"), ("qwertyuiop12", "most common"),
    ("Dragon!2026!", "most common"), ("aaaaaaaaaaaaaa", "too few different"),
    ("ann@example.com", "cannot be the e-mail"),
])
def test_weak_passwords_are_refused(app, password, reason):
    with pytest.raises(AccountError, match=reason):
        check_password_rule(password, "ann@example.com")


def test_weak_passwords_are_refused_by_the_cli_and_the_users_page(app, runner, admin_client):
    result = runner.invoke(args=["users", "create", "--email", "bob@example.com", "--role", "viewer",
                                 "--password", "password1234"])
    assert result.exit_code == 1 and "most common" in result.output
    page = admin_client.post("/settings/users/new", data={"email": "bob@example.com", "role": "viewer",
                                                          "password": "        "})
    assert page.status_code == 422 and b"cannot be blank" in page.data
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "bob@example.com")) is None
        create_user("bob@example.com", "viewer", "correct horse battery staple", ADMIN)  # a good one passes


def test_the_csv_importer_and_the_customer_form_apply_the_same_address_rule(app, runner, admin_client, tmp_path):
    """A customer address with quotes and angle brackets once reached the RQ dashboard in an SMTP error."""
    from app.models import Customer
    from app.records.entities import EntityInput, create_legal_entity

    with app.app_context():
        create_legal_entity(EntityInput(code="DE01", name="Demo GmbH", country="DE", currency="EUR"))
        db.session.commit()
    payload = '"<img/src/onerror=alert(document.domain)>"@x.example'
    header = ("entity,contract_ref,customer,customer_email,description,quantity,unit_price,currency,tax_rate,"
              "frequency,start_date,end_date,payment_method,iban,mandate_reference,mandate_date")
    rows = [f'DE01,C-1,Acme GmbH,"{payload.replace(chr(34), chr(34) * 2)}",Hosting,1,49.00,EUR,19,monthly,'
            "2026-01-31,,,,,",
            "DE01,C-2,Beta AG,ap@beta.test,Hosting,1,49.00,EUR,19,monthly,2026-01-31,,,,,"]
    path = tmp_path / "contracts.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = runner.invoke(args=["contracts", "import", str(path)])
    assert result.exit_code == 1
    assert "line 2: customer_email:" in result.output and "line 3: customer_email:" in result.output
    page = admin_client.post("/customers/new", data={"name": "Acme GmbH", "email": payload})
    assert page.status_code == 422 and b"is not an e-mail address" in page.data
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
