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


DEVELOPMENT_SECRET_KEY = "dev-only-not-secret"
# Keys that have been printed in this repository or its docs: production refuses them.
KNOWN_SECRET_KEYS = frozenset({DEVELOPMENT_SECRET_KEY, "change-me-before-production", "testing", "secret",
                               "changeme", "change-me", "s3cret"})
SECRET_KEY_MIN_BYTES = 32
MAKE_A_SECRET_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


def check_production_secret_key(secret: str | None) -> str:
    """The SECRET_KEY production may start with, or RuntimeError saying what is wrong and how to make one."""
    how = f"make one with: {MAKE_A_SECRET_KEY}"
    if not secret:
        raise RuntimeError(f"SECRET_KEY is not set: production refuses to start without it ({how})")
    if secret != secret.strip() or not secret.strip():
        raise RuntimeError(f"SECRET_KEY starts or ends with whitespace, or is blank: production refuses it ({how})")
    if secret in KNOWN_SECRET_KEYS or secret.lower() in KNOWN_SECRET_KEYS:
        raise RuntimeError(f"SECRET_KEY is a published default: anyone could forge sessions with it ({how})")
    if len(secret.encode()) < SECRET_KEY_MIN_BYTES:
        raise RuntimeError(f"SECRET_KEY is {len(secret.encode())} bytes long; production needs at least "
                           f"{SECRET_KEY_MIN_BYTES} random bytes ({how})")
    if len(set(secret)) < 8:
        raise RuntimeError(f"SECRET_KEY repeats too few characters to be random ({how})")
    return secret


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")  # the app's own lines (app/logs.py); DEBUG shows more
    SQLALCHEMY_DATABASE_URI = normalize_database_url(os.environ.get("DATABASE_URL") or default_database_url())
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or default_redis_url()
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    WTF_CSRF_TIME_LIMIT = None
    # Signing in (README, "Signing in"). No remember-me: a session lives while it is used.
    # Failed attempts on an account (passwords and second-factor codes): after LOGIN_FREE_ATTEMPTS each further
    # attempt waits 2^k seconds, at most LOGIN_DELAY_MAX_SECONDS; never a lock.
    LOGIN_FREE_ATTEMPTS = int(os.environ.get("LOGIN_FREE_ATTEMPTS", "5"))
    LOGIN_DELAY_MAX_SECONDS = int(os.environ.get("LOGIN_DELAY_MAX_SECONDS", "300"))
    # Failed attempts further apart than this start the count again.
    LOGIN_FAILURE_DECAY_SECONDS = int(os.environ.get("LOGIN_FAILURE_DECAY_SECONDS", "900"))
    # Sign-in posts (password, second factor, enrolment) per client address (Flask-Limiter's notation); 429 beyond.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "20 per minute")
    # The limiter's counters live in REDIS_URL under this prefix; without Redis they fall back to memory.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "arbill-limits")
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    # A password accepted waits this long for its second factor (or the enrolment of one) before it must be
    # given again.
    SECOND_FACTOR_MINUTES = int(os.environ.get("SECOND_FACTOR_MINUTES", "5"))
    # A session unused for this long ends (the next request goes to the login page).
    SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
    # Behind a reverse proxy: how many proxies' X-Forwarded-For / -Proto to trust (0: none, the address is the
    # peer's). The rate limit and the audit trail use the client address this gives.
    PROXY_FIX_X_FOR = int(os.environ.get("PROXY_FIX_X_FOR", "0"))
    # The name authenticator apps show next to the account.
    TOTP_ISSUER = os.environ.get("TOTP_ISSUER", "Arbill")
    # The address people reach Arbill at, for the links in account e-mails (password reset, invitations), e.g.
    # https://billing.example.com. Unset: the address of the request that sends the e-mail (set it in production:
    # a request's Host header is the client's to choose); the CLI needs it to send invitations.
    BASE_URL = (os.environ.get("BASE_URL") or "").strip() or None
    # How long a password reset link works (it also stops once the password changes, i.e. after one use).
    PASSWORD_RESET_MAX_AGE_SECONDS = int(os.environ.get("PASSWORD_RESET_MAX_AGE_SECONDS", str(3600)))
    # At most one password reset e-mail per address this often (more requests get the same answer, and no mail).
    PASSWORD_RESET_MAIL_INTERVAL_SECONDS = int(os.environ.get("PASSWORD_RESET_MAIL_INTERVAL_SECONDS", "60"))
    # How long an invitation link works; Resend sends a new one (and retires the ones before).
    INVITATION_MAX_AGE_SECONDS = int(os.environ.get("INVITATION_MAX_AGE_SECONDS", str(7 * 24 * 3600)))
    # Mail (Flask-Mail's names). `make run` points these at its local mail sink.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "8025"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER") or "billing@arbill.localhost"
    # Production refuses to hand invoices to Arbill's development mail sink (it delivers nothing).
    MAIL_REFUSE_DEVELOPMENT_SINK = False
    # A handed-on event not acted on by an agent after this long is looked at by the relay's watchdog:
    # its job enqueued again when Redis lost it (flask events pending, /healthz).
    EVENT_HANDLING_GRACE_SECONDS = int(os.environ.get("EVENT_HANDLING_GRACE_SECONDS", "120"))
    # An e-mail attempt in flight longer than this lost its worker: outcome unknown (default: the
    # delivery job's timeout + 60 s).
    DELIVERY_IN_FLIGHT_SECONDS = int(os.environ.get("DELIVERY_IN_FLIGHT_SECONDS", "0")) or None
    # An issued invoice not e-mailed after this many minutes is "undelivered" (invoice list, CLI, /healthz).
    UNDELIVERED_AFTER_MINUTES = int(os.environ.get("UNDELIVERED_AFTER_MINUTES", "60"))
    # Crash detection (app/billing/supervision.py): a busy worker reports every WORKER_HEARTBEAT_SECONDS;
    # a billing job whose worker has not reported for WORKER_LOST_SECONDS is re-queued (at most
    # RUN_MAX_REQUEUES times per chunk); the scheduler looks every RUN_SUPERVISE_SECONDS.
    WORKER_HEARTBEAT_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_SECONDS", "10"))
    WORKER_LOST_SECONDS = int(os.environ.get("WORKER_LOST_SECONDS", "30"))
    RUN_SUPERVISE_SECONDS = int(os.environ.get("RUN_SUPERVISE_SECONDS", "15"))
    RUN_MAX_REQUEUES = int(os.environ.get("RUN_MAX_REQUEUES", "3"))
    # A real billing run may bill at most this many days after today in the legal entity's time zone (a
    # person must also say so explicitly: the preview's checkbox, `flask billing run --ahead-of-time`).
    RUN_AS_OF_MAX_DAYS_AHEAD = int(os.environ.get("RUN_AS_OF_MAX_DAYS_AHEAD", "31"))
    # How long a preview's Confirm button stays valid (billing run, closing a SEPA batch, bulk resend).
    CONFIRM_MAX_AGE_SECONDS = int(os.environ.get("CONFIRM_MAX_AGE_SECONDS", "900"))
    # A billing run with no job left alive in Redis and no progress for this long is failed.
    RUN_STALE_SECONDS = int(os.environ.get("RUN_STALE_SECONDS", "120"))
    # Worker and scheduler wait for an unreachable Redis, retrying with back-off up to this many seconds.
    REDIS_RETRY_MAX_SECONDS = int(os.environ.get("REDIS_RETRY_MAX_SECONDS", "30"))
    # An event chain deeper than this is stopped and reported (loop guard).
    EVENT_CHAIN_MAX_DEPTH = int(os.environ.get("EVENT_CHAIN_MAX_DEPTH", "5"))
    # The largest request the web app reads, uploads included (bytes); a larger one is refused with 413.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(8 * 1024 * 1024)))
    # The largest bank statement read (camt.053, MT940, CSV), through the web or `flask bank import`.
    STATEMENT_MAX_BYTES = int(os.environ.get("STATEMENT_MAX_BYTES", str(20 * 1024 * 1024)))
    # Rows a CSV import through the web app takes; a larger file is refused (`flask contracts import` has no cap).
    IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "10000"))
    # Where `make run`'s mail sink keeps what it received (the admin's "Mailbox (development)" page).
    MAILBOX_DIR = os.environ.get("MAILBOX_DIR", str(INSTANCE_DIR / "mailbox"))
    # Strict-Transport-Security's max-age; 0 sends none (development is plain HTTP). See app/web/security.py.
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", "0"))
    TESTING = False


class DevelopmentConfig(Config):
    pass


def check_production_base_url(value: str | None) -> str:
    """Production's links in account e-mails start with BASE_URL, never with a request's Host header (which
    whoever asks for a password reset chooses: the link would point at their server)."""
    url = (value or "").strip().rstrip("/")
    if not url:
        raise RuntimeError("BASE_URL is not set: production needs the address people reach Arbill at for the links "
                           "in password reset and invitation e-mails, e.g. BASE_URL=https://billing.example.com")
    if not url.startswith("https://") or len(url) <= len("https://"):
        raise RuntimeError(f"BASE_URL {url!r} must be an https:// address, e.g. https://billing.example.com "
                           "(production sends its cookies over HTTPS only)")
    return url


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))

    MAIL_REFUSE_DEVELOPMENT_SINK = True
    DEMO_DATA_ALLOWED = False

    def __init__(self) -> None:
        self.SECRET_KEY = check_production_secret_key(os.environ.get("SECRET_KEY"))
        if not (os.environ.get("MAIL_SERVER") or "").strip():
            raise RuntimeError("MAIL_SERVER is not set: production sends invoices to customers and needs a real "
                               "SMTP server (set MAIL_SERVER, MAIL_PORT and, if it asks for them, MAIL_USERNAME, "
                               "MAIL_PASSWORD, MAIL_USE_TLS)")
        self.BASE_URL = check_production_base_url(os.environ.get("BASE_URL"))


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing"
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(INSTANCE_DIR / "test.db")
    )
    # Many tests sign in from 127.0.0.1 in one minute; tests of the limit set their own.
    LOGIN_RATE_LIMIT = "10000 per minute"


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
