"""Configuration classes. Every setting is read from the environment; see README.md."""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("ARBILL_INSTANCE_DIR", BASE_DIR / "instance"))


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def default_database_url() -> str:
    return f"sqlite:///{INSTANCE_DIR / 'arbill.db'}"


def embedded_redis_socket() -> Path:
    """Where `make run` puts its embedded Redis; every process of the checkout finds it there."""
    return INSTANCE_DIR / "redis.sock"


def default_redis_url() -> str:
    return f"unix://{embedded_redis_socket()}"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    SQLALCHEMY_DATABASE_URI = normalize_database_url(os.environ.get("DATABASE_URL") or default_database_url())
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or default_redis_url()
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    # Failed logins: after LOGIN_MAX_FAILURES failures an account is locked for LOGIN_LOCK_SECONDS.
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCK_SECONDS = int(os.environ.get("LOGIN_LOCK_SECONDS", "300"))
    # Mail (Flask-Mail's names). `make run` points these at its local mail sink.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "8025"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "billing@arbill.localhost")
    # Crash detection (app/billing/supervision.py): a busy worker reports every WORKER_HEARTBEAT_SECONDS;
    # a billing job whose worker has not reported for WORKER_LOST_SECONDS is re-queued (at most
    # RUN_MAX_REQUEUES times per chunk); the scheduler looks every RUN_SUPERVISE_SECONDS.
    WORKER_HEARTBEAT_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_SECONDS", "10"))
    WORKER_LOST_SECONDS = int(os.environ.get("WORKER_LOST_SECONDS", "30"))
    RUN_SUPERVISE_SECONDS = int(os.environ.get("RUN_SUPERVISE_SECONDS", "15"))
    RUN_MAX_REQUEUES = int(os.environ.get("RUN_MAX_REQUEUES", "3"))
    # A billing run with no job left alive in Redis and no progress for this long is failed.
    RUN_STALE_SECONDS = int(os.environ.get("RUN_STALE_SECONDS", "120"))
    # Worker and scheduler wait for an unreachable Redis, retrying with back-off up to this many seconds.
    REDIS_RETRY_MAX_SECONDS = int(os.environ.get("REDIS_RETRY_MAX_SECONDS", "30"))
    # An event chain deeper than this is stopped and reported (loop guard).
    EVENT_CHAIN_MAX_DEPTH = int(os.environ.get("EVENT_CHAIN_MAX_DEPTH", "5"))
    # Where `make run`'s mail sink keeps what it received (the admin's "Mailbox (development)" page).
    MAILBOX_DIR = os.environ.get("MAILBOX_DIR", str(INSTANCE_DIR / "mailbox"))
    TESTING = False


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    def __init__(self) -> None:
        secret = os.environ.get("SECRET_KEY")
        if not secret:
            raise RuntimeError("SECRET_KEY is not set: production refuses to start without it")
        self.SECRET_KEY = secret


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing"
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(INSTANCE_DIR / "test.db")
    )
    LOGIN_LOCK_SECONDS = 60


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def config_from_env() -> Config:
    name = os.environ.get("ARBILL_ENV", "development")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise RuntimeError(f"ARBILL_ENV={name!r} is not one of {', '.join(CONFIGS)}") from None
