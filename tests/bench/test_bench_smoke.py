"""Every bench in bench/ runs at a tiny size (`--smoke`), so a bench broken by a change fails the suite instead
of rotting until someone needs its figures (two had: the floor's rows and the aging seed lacked new columns).

This asserts only that each bench ends with exit code 0 (no crash, its own correctness check passed) and prints
the summary lines others read; never a time. The benches run as subprocesses, three at a time (each takes
seconds, mostly start-up), against this test run's database server and Redis server:

- PostgreSQL when TEST_DATABASE_URL is set (CI): each bench creates and drops its own `arbill_bench_*_<random>`
  database on that server, never the test database. Without it (SQLite), the benches that can run on SQLite do
  (a file of their own) and the PostgreSQL-only ones are skipped, saying so — under CI=true a skip is an error.
- Redis: REDIS_URL's server (or the embedded one conftest starts), never the tests' db nor db 0: each flushing
  bench on a db of its own, the others (the app still writes sign-in limits and relay jobs) on one more, all
  from BENCH_SMOKE_REDIS_DBS (default 13,14,15,10,11,12,8) minus the tests' db.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per bench; a smoke run takes 5-30 s on a busy 2-vCPU machine
PARALLEL = 3


@dataclass(frozen=True)
class Bench:
    script: str
    postgres_only: bool = False  # measures PostgreSQL itself (COPY, EXPLAIN, backend CPU)
    flushes_redis: bool = False  # gets a Redis db of its own, which it flushes
    uses_db: bool = True  # takes --db
    uses_redis: bool = True  # takes --redis
    summary: tuple[str, ...] = (r"^correctness: +OK$",)  # lines (regex) the output must contain


BENCHES = {
    # The aging summary and the billing run's fanned-out line are read by others: their shape is kept.
    "aging": Bench("aging.py", postgres_only=True,
                   summary=(r"^page     median +\d+\.\d ms ", r"^csv      median +\d+\.\d ms ",
                            r"^correctness: .*: OK$")),
    "billing_run": Bench("billing_run.py", postgres_only=True, flushes_redis=True,
                         summary=(r"^fanned out over 2 workers: +\d+\.\d\d s, [\d,]+ contracts/s, [\d,]+ invoices, "
                                  r"\d+\.\dx the floor \(\d+\.\dx COPY into tables without indexes\); correctness OK$",
                                  r"^correctness: +OK$")),
    "delivery": Bench("delivery.py", postgres_only=True, flushes_redis=True),
    # gunicorn + RQ workers + locust: per-page figures and no failed request while a (tiny) run executes.
    "load": Bench("load.py", postgres_only=True, flushes_redis=True,
                  summary=(r"^all pages \(PDF excluded\) +[\d,]+ +\d+ +\d+ +\d+ +0$", r"^PDF +[\d,]+ .* 0   \(apart\)$",
                           r"^requests/s +\d+\.\d ", r"^billing run under load: +\d+\.\d\d s vs \d+\.\d\d s quiet",
                           r"^correctness: +OK$")),
    "lists": Bench("lists.py", postgres_only=True,
                   summary=(r"^invoices +-period +1 +\d+\.\d ", r"^bank queue +booked +\d+ +\d+\.\d ",
                            r"^correctness: OK$")),
    "worker_crash": Bench("worker_crash.py", postgres_only=True, flushes_redis=True),
    "relay": Bench("relay.py", flushes_redis=True),
    "bank_import": Bench("bank_import.py", uses_redis=False),
    "sepa_close": Bench("sepa_close.py", uses_redis=False),
    "contracts_import": Bench("contracts_import.py", uses_redis=False),
    "render": Bench("render.py", uses_db=False),
}


def redis_db_url(url: str, db: int) -> str:
    """The same Redis server, db `db` (redis://host:port/N, or unix://path?db=N)."""
    if url.startswith("unix:"):
        path, _, query = url.partition("?")
        return f"{path}?{urlencode({**dict(parse_qsl(query)), 'db': db})}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def redis_db_of(url: str) -> int:
    from redis import Redis

    return int(Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0) or 0)


def command(name: str, bench: Bench, database: str, redis: str) -> list[str]:
    args = [sys.executable, str(ROOT / "bench" / bench.script), "--smoke"]
    if bench.uses_db:
        args += ["--db", database]
    return args + (["--redis", redis] if bench.uses_redis else [])


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=TIMEOUT)
        return done.returncode, done.stdout, time.monotonic() - started
    except subprocess.TimeoutExpired as expired:  # run() has killed it; its finally could not drop the database
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return -9, output + f"\n(killed after {TIMEOUT} s)", time.monotonic() - started


@pytest.fixture(scope="module")
def smoke_runs(request, redis_url):
    """Starts every selected bench that can run here (three at a time); name -> Future of (exit code, output,
    seconds)."""
    postgres = os.environ.get("TEST_DATABASE_URL")
    database = postgres or "sqlite"
    tests_db = redis_db_of(redis_url)
    pool = [int(n) for n in os.environ.get("BENCH_SMOKE_REDIS_DBS", "13,14,15,10,11,12,8").split(",")]
    free = iter(n for n in pool if n not in (0, tests_db))
    shared = None  # the one db of the benches that do not flush theirs
    # The benches' processes must not find the test run's database through the environment.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    selected = {item.callspec.params["name"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_bench_runs_tiny_and_its_checks_pass"}
    runnable = {name: bench for name, bench in BENCHES.items()
                if name in selected and (postgres or not bench.postgres_only)}
    executor = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="bench-smoke")
    futures = {}
    for name, bench in sorted(runnable.items(), key=lambda item: not item[1].flushes_redis):  # slowest first
        if not bench.flushes_redis and shared is None:
            shared = next(free)
        redis = redis_db_url(redis_url, next(free) if bench.flushes_redis else shared)
        futures[name] = executor.submit(run, command(name, bench, database, redis), env)
    yield futures
    executor.shutdown(wait=True)
    if shared is not None:  # what the app wrote there (a flushing bench empties its own db itself)
        from redis import Redis

        Redis.from_url(redis_db_url(redis_url, shared)).flushdb()


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_runs_tiny_and_its_checks_pass(name, smoke_runs):
    bench = BENCHES[name]
    if name not in smoke_runs:
        pytest.skip(f"bench/{bench.script} measures PostgreSQL itself: set TEST_DATABASE_URL (as CI does) to run it")
    code, output, seconds = smoke_runs[name].result(timeout=TIMEOUT + 60)
    tail = "\n".join(output.splitlines()[-40:])
    assert code == 0, f"bench/{bench.script} --smoke exited {code} after {seconds:.0f} s:\n{tail}"
    for pattern in bench.summary:
        assert re.search(pattern, output, re.MULTILINE), f"bench/{bench.script}: no line like {pattern!r} in:\n{tail}"
