"""What the benchmarks share: a throw-away PostgreSQL database and an app configuration for it."""
from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestingConfig, normalize_database_url  # noqa: E402


@dataclass
class BenchDatabase:
    """A database created on the server of `server_url` for one benchmark, dropped at the end."""

    server_url: str  # SQLAlchemy URL (psycopg driver) of the server's maintenance database
    name: str

    @classmethod
    def new(cls, server_url: str, prefix: str) -> "BenchDatabase":
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


def make_config(database_url: str, redis_url: str, **overrides) -> TestingConfig:
    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.REDIS_URL = redis_url
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def clean_up(app, bench: BenchDatabase, created: bool, keep_db: bool, redis_url: str | None = None,
             say=print) -> None:
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
