"""A throw-away database per benchmark (PostgreSQL, or SQLite for the benches that can run on it), the app
configured for it, migrations, COPY/seeding helpers, the way back to the seeded state, and the clean-up."""
from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from . import ROOT  # noqa: F401 - puts the project root on sys.path

from config import TestingConfig, normalize_database_url  # noqa: E402

# Append-only logs that creating the entity (seeding) writes to as well: going back to the seeded state
# empties them together, so the hash chain starts again from its genesis instead of colliding.
AUDIT_TABLES = ("audit_entries", "audit_chains", "audit_chain_entries", "audit_chain_verifications")


def is_sqlite(url: str) -> bool:
    return url == "sqlite" or url.startswith("sqlite:")


@dataclass
class BenchDatabase:
    """A database created on the server of `server_url` for one benchmark, dropped at the end."""

    server_url: str  # SQLAlchemy URL (psycopg driver) of the server's maintenance database
    name: str
    kind = "postgresql"

    @classmethod
    def new(cls, server_url: str, prefix: str) -> "BenchDatabase | SqliteDatabase":
        """PostgreSQL: a fresh `<prefix>_<random>` on the server of `server_url`. `sqlite` (or a sqlite: URL):
        a file in a temporary directory, for the benches that run on SQLite too."""
        if is_sqlite(server_url):
            return SqliteDatabase(prefix)
        return cls(normalize_database_url(server_url), f"{prefix}_{uuid.uuid4().hex[:10]}")

    @property
    def sqlalchemy_url(self) -> str:
        return make_url(self.server_url).set(database=self.name).render_as_string(hide_password=False)

    url = sqlalchemy_url

    @property
    def conninfo(self) -> str:
        """The same database for psycopg directly (COPY)."""
        return make_url(self.sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class SqliteDatabase:
    """The same interface on a SQLite file in a temporary directory (removed by drop())."""

    prefix: str
    directory: Path | None = None
    kind = "sqlite"

    @property
    def name(self) -> str:
        return str(self.directory / "bench.db") if self.directory else f"{self.prefix} (SQLite)"

    @property
    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.directory / 'bench.db'}"

    url = sqlalchemy_url

    def create(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"{self.prefix}_"))

    def drop(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def make_config(database_url: str, redis_url: str, **overrides) -> TestingConfig:
    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.REDIS_URL = redis_url
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def migrate(app) -> None:
    """Flask-Migrate `upgrade()`; alembic logs every migration to stderr: shown only if something fails."""
    from flask_migrate import upgrade

    log = io.StringIO()
    try:
        with app.app_context(), contextlib.redirect_stderr(log):
            upgrade()
    except Exception:
        sys.stderr.write(log.getvalue())
        raise


def create_app_on(bench, redis_url: str, **overrides):
    """The app on the bench database, migrated."""
    from app import create_app

    app = create_app(make_config(bench.sqlalchemy_url, redis_url, **overrides))
    migrate(app)
    return app


def copy_into(cursor, table: str, columns: str, rows) -> None:
    """psycopg COPY of `rows` (tuples) into `table (columns)`."""
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def set_serials(cursor, tables) -> None:
    """Move each table's id sequence past the ids seeded explicitly (PostgreSQL)."""
    for table in tables:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"(SELECT coalesce(max(id), 1) FROM {table}))")


@dataclass
class SeededState:
    """What `reset()` empties to come back to the seeded state: every table empty after seeding, and the
    audit logs. Computed from the schema, so a table a later migration adds is emptied too."""

    tables: list[str] = field(default_factory=list)

    @classmethod
    def snapshot(cls, conninfo: str) -> "SeededState":
        import psycopg

        with psycopg.connect(conninfo, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                                "AND tablename <> 'alembic_version' ORDER BY 1")]
            empty = [n for n in names if conn.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{n}")').fetchone()[0]]
        return cls(sorted(set(empty) | (set(AUDIT_TABLES) & set(names))))

    def reset(self, conninfo: str) -> None:
        """Back to the seeded state, flushed to disk (CHECKPOINT) so the next measurement starts alike."""
        import psycopg

        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in self.tables) + " RESTART IDENTITY CASCADE")
            conn.execute("CHECKPOINT")


def clean_up(app, bench, created: bool, keep_db: bool, redis_url: str | None = None, say=print) -> None:
    """The end of every benchmark, also after an error or Ctrl-C: close the app's connections, drop
    the database (unless --keep-db) and empty the benchmark's Redis db. Each step goes on if one fails."""
    if app is not None:
        try:
            from app.extensions import db

            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        except Exception as error:  # noqa: BLE001 - cleanup goes on
            say(f"could not close the app's connections: {error}")
    if created and not keep_db:
        try:
            bench.drop()
            say(f"dropped database {bench.name}")
        except Exception as error:  # noqa: BLE001
            say(f"could not drop database {bench.name}: {error}")
    elif created:
        say(f"kept database {bench.name} (--keep-db)")
    if redis_url:
        from redis import Redis

        try:
            Redis.from_url(redis_url).flushdb()
        except Exception as error:  # noqa: BLE001
            say(f"could not flush {redis_url}: {error}")
