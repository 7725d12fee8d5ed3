"""The options every bench takes, with the same names, help and checks, and the signal handling they share.

--smoke runs a bench at a tiny size (seconds): `make bench-smoke` (tests/bench/test_bench_smoke.py) runs
every bench so, and fails when one crashes or its own correctness check fails. Its figures mean nothing.
"""
from __future__ import annotations

import argparse
import signal

from redis import Redis

from .database import is_sqlite

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def parser_for(doc: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc.split("\n\n")[0].strip())


def add_db(parser, prefix: str, required: bool = False, default: str | None = POSTGRES, sqlite: bool = False) -> None:
    where = ("a PostgreSQL URL on the server to use, or `sqlite` (a file in a temporary directory)" if sqlite
             else "a PostgreSQL URL on the server to use")
    kwargs = {"required": True} if required else {"default": default}
    parser.add_argument("--db", help=f"{where}; a fresh {prefix}_* database is made there and dropped at the end"
                        + ("" if required else f" (default {default})"), **kwargs)


def add_redis(parser, default: str, flushed: bool = True) -> None:
    parser.add_argument("--redis", default=default,
                        help=(f"Redis for the jobs; its db is FLUSHED, never db 0 (default {default})" if flushed
                              else f"Redis URL the app is configured with; not flushed, though the app writes to it "
                                   f"(sign-in limits, the outbox relay's job) (default {default})"))


def add_keep_db(parser) -> None:
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database (debugging)")


def add_smoke(parser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny size (seconds) to check that the bench still runs and its checks pass; "
                             "sizes given explicitly win; the figures mean nothing")


def apply_smoke(args, parser, **tiny) -> None:
    """Under --smoke, each option the user left at its default takes its tiny value."""
    if not getattr(args, "smoke", False):
        return
    for name, value in tiny.items():
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def check_redis_flushable(parser, url: str) -> None:
    """The bench flushes its Redis db: never db 0, where the app and the test suite live."""
    try:
        db = int(Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0) or 0)
    except ValueError as error:
        parser.error(f"--redis {url}: {error}")
    if db == 0:
        parser.error("--redis points at db 0, which the benchmark would flush: use another db index (e.g. /9)")


def require_postgres(parser, url: str, why: str) -> None:
    if is_sqlite(url):
        parser.error(f"--db must be PostgreSQL: {why}")


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """SIGTERM ends the bench like Ctrl-C: through its `finally`, which drops the database."""
    signal.signal(signal.SIGTERM, _terminate)


def ignore_signals() -> None:
    """In the clean-up: a second Ctrl-C or SIGTERM must not skip it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
