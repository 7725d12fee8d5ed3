#!/usr/bin/env python
"""Load test: many people on the web app while a billing run executes on the workers. Prints figures, never
passes or fails a test.

    python bench/load.py --users 50 --contracts 100000 [--db URL] [--redis URL]

What it does, on a throw-away database `arbill_bench_load_<random>` on the server of --db (dropped at the end,
also after an error, Ctrl-C or SIGTERM) and a Redis db it flushes (never db 0):

1. migrates it and seeds two legal entities of N contracts each with the billing benches' seed
   (bench/billing_seed.py, the same random seed, so the same data): HIST, whose billing run is the quiet
   reference and then the history people look at (its run, invoices, AR aging), and LIVE, billed under load;
   creates --users accountants of HIST, each with a password and an enrolled second factor;
2. starts W `python worker.py billing` processes and gunicorn (`wsgi:app`, --web-workers processes x
   --web-threads threads, as the Procfile runs it) on that database and Redis;
3. quiet: bills HIST (`start_billing_run()` enqueued, polled until it ends) with nothing else of the bench
   running: the run's time on a quiet system;
4. loaded: starts locust headless (a subprocess: bench/load_tour.py) with --users people at --spawn-rate per
   second, each signing in (password + code) and going round the tour with a --think time between pages;
   when all are signed in and --warmup seconds more have passed, bills LIVE the same way, then stops locust;
5. prints, over the window in which the LIVE run executed: per page requests, p50/p95/p99 ms and errors
   (the PDF download apart: its first download renders the PDF/A-3), requests/s, the run's time under load
   against the quiet one, where the CPU went (gunicorn, workers, locust, the whole machine); checks both runs
   (bench/billing_checks.py: invoices = due periods seeded, gapless numbers, events, equal totals) and that no
   request failed (`correctness: OK`, else exit 1).

locust runs on the same machine and takes CPU from the app (its share is printed). The sign-in rate limit per
client address (LOGIN_RATE_LIMIT, 20 a minute) is raised for gunicorn: every simulated person comes from
127.0.0.1, where real ones come from addresses of their own.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg
from redis import Redis

from benchlib import ROOT, BenchDatabase, clean_up, create_app_on
from benchlib.options import (add_db, add_keep_db, add_redis, add_smoke, apply_smoke, check_redis_flushable,
                              ignore_signals, interrupt_on_sigterm, parser_for, require_postgres)
from benchlib.sampling import MachineLoad, loadavg, machine
from benchlib.signin import create_bench_user
from benchlib.timing import say, wait_until
from benchlib.web import Gunicorn
from benchlib.workers import Workers, die_with_parent, process_env
from billing_checks import inspect_run, print_outcome, wait_for_run
from billing_seed import seed, set_chunk_size
from load_report import figures, print_table, read_samples


def create_people(app, entity_id: int, count: int) -> list[dict]:
    """`count` accountants of the entity, each with a second factor (the tour signs in with both)."""
    from app.audit import Actor
    from app.extensions import db
    from app.models import LegalEntity

    with app.app_context():
        entity = db.session.get(LegalEntity, entity_id)
        people = [create_bench_user(f"person{i:03d}@example.com", "accountant", f"load bench password {i}",
                                    Actor.system("bench"), entity=entity) for i in range(count)]
        db.session.commit()
        db.session.remove()
    return [p.__dict__ for p in people]


def bill(app, bench, seeded, as_of, workers: Workers, timeout: float, log_dir: Path, label: str):
    """One billing run of the seeded entity through the workers, timed from start_billing_run() until it ends."""
    from app.audit import Actor
    from app.billing.runs import start_billing_run
    from app.extensions import db
    from app.models import LegalEntity

    with app.app_context(), psycopg.connect(bench.conninfo, autocommit=True) as poll:
        entity = db.session.get(LegalEntity, seeded.entity_id)
        machine_load, cpu_before = MachineLoad(per_process=False), workers.cpu_seconds()
        started = time.perf_counter()
        run_id = start_billing_run(entity, as_of, "cli", Actor.system("bench"), enqueue=True).run.id
        db.session.remove()
        wait_for_run(poll, run_id, timeout, log_dir)
        seconds = time.perf_counter() - started
    time.sleep(0.2)  # the last work horse reaped, its CPU counted
    outcome = inspect_run(bench, label, seconds, run_id, seeded)
    outcome.cpu["workers and work horses"] = sum(workers.cpu_seconds()) - sum(cpu_before)
    outcome.cpu["machine busy"] = machine_load.busy_since()
    return outcome


def start_locust(web: Gunicorn, config: Path, users: int, spawn_rate: float, log_dir: Path) -> subprocess.Popen:
    with open(log_dir / "locust.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "load_tour.py"), "--headless", "--users",
             str(users), "--spawn-rate", str(spawn_rate), "--host", web.url, "--run-time", "24h", "--only-summary",
             "--stop-timeout", "30", "--loglevel", "WARNING"],
            cwd=ROOT / "bench", env={**process_env("", ""), "LOAD_TOUR_CONFIG": str(config)}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509


def stop_locust(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()  # locust stops its users and writes its summary
    try:
        proc.wait(45)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_of(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--users", type=int, default=50, help="people at once (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="people starting per second (default 10)")
    parser.add_argument("--think", default="1-3", help="seconds between two pages, min-max, uniform (default 1-3)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of load after all signed in, before "
                        "the run starts and the window opens (default 10)")
    parser.add_argument("--min-window", type=float, default=0, help="measure at least this many seconds, even "
                        "if the run ends sooner (default 0: the window is the run)")
    parser.add_argument("--contracts", type=int, default=100_000, help="contracts per entity (default 100,000)")
    parser.add_argument("--workers", type=int, default=2, help="`worker.py billing` processes (default 2)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes (default 2, the Procfile's)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process (default 4)")
    parser.add_argument("--chunk-size", type=int, default=None, help="the billing agent's chunk_size (default 2000)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15), help="the runs' as-of date")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the generated data")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a run after this (s)")
    add_db(parser, "arbill_bench_load")
    add_redis(parser, "redis://127.0.0.1:6379/9")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, users=2, spawn_rate=2, think="0.1-0.3", warmup=1, min_window=4, contracts=300,
                chunk_size=50, timeout=120)
    require_postgres(parser, args.db, "the bench runs the billing engine on PostgreSQL, as production does")
    check_redis_flushable(parser, args.redis)
    try:
        think = tuple(float(x) for x in args.think.split("-"))
        assert len(think) == 2 and 0 <= think[0] <= think[1]
    except (ValueError, AssertionError):
        parser.error("--think takes min-max seconds, e.g. 1-3")
    if args.users < 1 or args.contracts < 1 or args.workers < 1 or args.web_workers < 1 or args.web_threads < 1:
        parser.error("--users, --contracts, --workers, --web-workers and --web-threads must be at least 1")

    interrupt_on_sigterm()
    bench = BenchDatabase.new(args.db, "arbill_bench_load")
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_bench_load_"))
    created, problems = False, []
    workers = web = locust = None
    try:
        bench.create()
        created = True
        host = machine()
        say(f"Arbill load benchmark: {args.users} people, runs of {args.contracts:,} contracts, database {bench.name}, "
            f"Redis {args.redis}; {host['nproc']} CPUs {host['cpu']}; load average {loadavg()}")
        Redis.from_url(args.redis).flushdb()
        app = create_app_on(bench, args.redis)
        chunk_size = set_chunk_size(app, args.chunk_size)
        hist = seed(app, bench, args.contracts, args.as_of, random.Random(args.seed), code="HIST")
        live = seed(app, bench, args.contracts, args.as_of, random.Random(args.seed), code="LIVE")
        people = create_people(app, hist.entity_id, args.users)
        say(f"seeded two entities of {args.contracts:,} contracts ({hist.expected_invoices:,} due periods each) in "
            f"{hist.seconds + live.seconds:.0f} s, {args.users} people with a second factor; chunk size {chunk_size}")

        workers = Workers("billing", args.workers, bench.sqlalchemy_url, args.redis, work_dir)
        workers.start()
        web = Gunicorn(bench.sqlalchemy_url, args.redis, work_dir, args.web_workers, args.web_threads,
                       env={"LOGIN_RATE_LIMIT": "100000 per minute"})  # everybody comes from 127.0.0.1 here
        web.start()
        say(f"{args.workers} billing workers and gunicorn ({args.web_workers} x {args.web_threads} threads) up; "
            f"logs in {work_dir}")

        say(f"\n[a] quiet: billing HIST with nothing else of the bench running (load average {loadavg()})")
        quiet = bill(app, bench, hist, args.as_of, workers, args.timeout, work_dir, "quiet")
        print_outcome(quiet, hist)
        problems += [f"quiet run: {p}" for p in quiet.problems]

        with psycopg.connect(bench.conninfo, autocommit=True) as conn:
            invoice_ids = [r[0] for r in conn.execute(
                "SELECT id FROM invoices WHERE legal_entity_id = %s ORDER BY random() LIMIT 5000", (hist.entity_id,))]
        samples = work_dir / "requests.csv"
        config = work_dir / "tour.json"
        config.write_text(json.dumps({"users": people, "run_id": quiet.run_id, "invoice_ids": invoice_ids,
                                      "think": think, "samples": str(samples)}))
        say(f"\n[b] loaded: {args.users} people (think {args.think} s between pages) while LIVE is billed "
            f"(load average {loadavg()})")
        locust = start_locust(web, config, args.users, args.spawn_rate, work_dir)

        def signed_in() -> bool:
            if locust.poll() is not None:
                raise RuntimeError(f"locust exited with {locust.returncode}: see {work_dir}/locust.log")
            done = sum(1 for s in read_samples(samples) if s.name == "sign-in" and s.ok)
            return done >= 3 * args.users  # login page, password, code

        wait_until(signed_in, f"{args.users} sign-ins", timeout=60 + 3 * args.users / args.spawn_rate, every=0.5)
        time.sleep(args.warmup)
        cpu_web, cpu_locust, machine_load = web.cpu_seconds(), cpu_of(locust.pid), MachineLoad(per_process=False)
        start = time.time()
        loaded = bill(app, bench, live, args.as_of, workers, args.timeout, work_dir, "loaded")
        time.sleep(max(0.0, start + args.min_window - time.time()))
        end = time.time()
        busy = machine_load.busy_since()
        cpu_web, cpu_locust = web.cpu_seconds() - cpu_web, cpu_of(locust.pid) - cpu_locust
        rss_web = web.rss_mb()
        stopped = time.time()
        stop_locust(locust)
        print_outcome(loaded, live)
        problems += [f"loaded run: {p}" for p in loaded.problems]
        if loaded.totals != quiet.totals:
            problems.append("the two runs' totals differ (the same data)")

        result = figures(read_samples(samples), start, end, stopped)
        window = end - start
        say(f"\n== SUMMARY == ({args.users} people, think {args.think} s; window: the LIVE run, {window:.1f} s"
            + (f", held to --min-window {args.min_window:.0f} s" if window > loaded.seconds + 0.5 else "") + ")")
        print_table(result)
        say(f"billing run under load:    {loaded.seconds:.2f} s vs {quiet.seconds:.2f} s quiet: "
            f"{loaded.seconds / quiet.seconds:.2f}x ({args.contracts:,} contracts, {args.workers} workers)")
        say(f"CPU in the window:         gunicorn {cpu_web:.1f} s, workers {loaded.cpu['workers and work horses']:.1f}"
            f" s, locust {cpu_locust:.1f} s; the machine ({os.cpu_count()} CPUs) "
            f"{100 * busy / (window * (os.cpu_count() or 1)):.0f}% busy (PostgreSQL and other work included)")
        say(f"gunicorn workers' RSS:     {', '.join(f'{mb:.0f}' for mb in rss_web)} MB")
        say(f"load average now:          {loadavg()} ({os.cpu_count()} CPUs; other work skews the figures)")
        if result.errors:
            problems.append(f"{result.errors} requests failed (see {work_dir}/locust.log)")
        if not result.all_pages.requests:
            problems.append("no page was measured in the window")
        say("correctness:               " + ("OK" if not problems else "; ".join(problems)))
        return 1 if problems else 0
    except KeyboardInterrupt as interrupt:
        say(f"\ninterrupted ({interrupt or 'Ctrl-C'}): cleaning up")
        problems.append("interrupted")
        return 130
    finally:
        ignore_signals()
        stop_locust(locust)
        if web is not None:
            web.stop()
        if workers is not None:
            workers.stop()
        clean_up(locals().get("app"), bench, created, args.keep_db, args.redis, say)
        if problems or sys.exc_info()[0] is not None:
            say(f"logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
