#!/usr/bin/env python
"""How long a billing run is held up when a worker dies mid-chunk: prints figures, passes or fails nothing.

    python bench/worker_crash.py --contracts N --db URL [--redis URL] [--chunk-size S] [--repeat R]

On a throw-away database (seeded as bench/billing_run.py seeds it, dropped at the end) it starts
`flask scheduler run` and two `python worker.py billing` processes, with the crash-detection
settings of the environment (README: WORKER_HEARTBEAT_SECONDS, WORKER_LOST_SECONDS,
RUN_SUPERVISE_SECONDS; unset, the defaults), starts a run, and once worker A is one second into a
chunk SIGKILLs A, its work horse and its RQ scheduler process, as a crashed machine would. It
prints the seconds from the kill to the chunk's re-queue (its audit entry) and to the end of the
run, and checks that every due period was billed once with gapless numbers. R repeats, each on
fresh tables. The Redis db is FLUSHED (never db 0).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil
from redis import Redis

from benchlib import ROOT, BenchDatabase, clean_up, make_config
from billing_run import _loadavg, _terminate, say, seed, set_chunk_size

PATIENCE = 1800.0


def _wait(condition, what: str):
    deadline = time.monotonic() + PATIENCE
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def one_crash(app, redis: Redis, entity_id: int, as_of: date, env: dict[str, str], work_dir: Path) -> dict:
    from rq import Worker
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from sqlalchemy import select, text

    from app.audit import Actor
    from app.billing.runs import start_billing_run
    from app.extensions import db
    from app.models import AuditEntry, BillingRun, Invoice, LegalEntity

    redis.flushdb()
    processes = {}
    for name, args in (("scheduler", ["-m", "flask", "scheduler", "run"]),
                       ("crash-a", ["worker.py", "--name", "crash-a", "billing"]),
                       ("crash-b", ["worker.py", "--name", "crash-b", "billing"])):
        with (work_dir / f"{name}.log").open("w") as log:
            processes[name] = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: {"crash-a", "crash-b"} <= {w.name for w in Worker.all(connection=redis)}, "the workers")
        with app.app_context():
            run_id = start_billing_run(db.session.get(LegalEntity, entity_id), as_of, "manual",
                                       Actor.system("bench")).run.id

            def a_chunk_of_a():
                for job_id in StartedJobRegistry("billing", connection=redis).get_job_ids(cleanup=False):
                    if "-chunk-" in job_id and Job.fetch(job_id, connection=redis).worker_name == "crash-a":
                        return job_id
                return None

            job_id = _wait(a_chunk_of_a, "worker A to take a chunk")
            time.sleep(1.0)  # well into the chunk
            victim = psutil.Process(processes["crash-a"].pid)
            family = [victim, *victim.children(recursive=True)]
            for process in family:
                process.send_signal(signal.SIGKILL)
            killed = time.time()
            say(f"  SIGKILLed worker A and {len(family) - 1} child process(es) during {job_id}")

            def requeued():
                db.session.expire_all()
                entry = db.session.scalar(select(AuditEntry).where(
                    AuditEntry.billing_run_id == run_id, AuditEntry.action == "billing_run.chunk_requeued"))
                db.session.rollback()
                return entry

            entry = _wait(requeued, "the re-queue")

            def ended():
                db.session.expire_all()
                run = db.session.get(BillingRun, run_id)
                db.session.rollback()
                return run if run.status not in ("pending", "running") else None

            run = _wait(ended, "the end of the run")
            invoices = db.session.execute(select(Invoice.contract_id, Invoice.period_start)).all()
            numbers = sorted(db.session.scalars(select(Invoice.sequence_number)))
            outcome = {"requeue_s": entry.at.timestamp() - killed, "end_s": run.finished_at.timestamp() - killed,
                       "status": run.status, "reason": entry.details.get("reason"),
                       "invoices": len(invoices), "duplicates": len(invoices) - len(set(invoices)),
                       "gapless": numbers == list(range(1, len(numbers) + 1))}
            db.session.execute(text("TRUNCATE invoices, invoice_lines, billing_runs, billing_run_items, "
                                    "billing_run_chunks, events, audit_entries, invoice_sequences CASCADE"))
            db.session.commit()
            return outcome
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=20_000, help="how many contracts to seed (default 20,000)")
    parser.add_argument("--db", required=True, help="a PostgreSQL URL; a fresh arbill_bench_* database is made there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9",
                        help="Redis for the jobs; its db is FLUSHED (default redis://127.0.0.1:6379/9)")
    parser.add_argument("--chunk-size", type=int, default=None, help="the agent's chunk_size (default: 2000)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15), help="the run's as-of date")
    parser.add_argument("--repeat", type=int, default=1, help="how many crashes (default 1)")
    args = parser.parse_args(argv)
    if int(Redis.from_url(args.redis).connection_pool.connection_kwargs.get("db", 0)) == 0:
        parser.error("--redis points at db 0, which the benchmark would flush: use another db index (e.g. /9)")

    signal.signal(signal.SIGTERM, _terminate)
    bench = BenchDatabase.new(args.db, "arbill_bench")
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_crash_"))
    app, created = None, False
    try:
        bench.create()
        created = True
        from flask_migrate import upgrade

        from app import create_app

        app = create_app(make_config(bench.sqlalchemy_url, args.redis))
        with app.app_context(), contextlib.redirect_stderr(io.StringIO()):  # alembic's log of each migration
            upgrade()
        chunk_size = set_chunk_size(app, args.chunk_size)
        seeded = seed(app, bench, args.contracts, args.as_of, random.Random(42))
        env = {**os.environ, "DATABASE_URL": bench.sqlalchemy_url, "REDIS_URL": args.redis, "FLASK_APP": "wsgi.py"}
        settings = {k: env.get(k, "default") for k in ("WORKER_HEARTBEAT_SECONDS", "WORKER_LOST_SECONDS",
                                                      "RUN_SUPERVISE_SECONDS")}
        say(f"{seeded.contracts:,} contracts ({seeded.expected_invoices:,} due periods), chunks of {chunk_size}, "
            f"2 workers + the scheduler; {settings}; load average {_loadavg()}, {os.cpu_count()} CPUs; "
            f"logs in {work_dir}")
        redis = Redis.from_url(args.redis)
        for attempt in range(1, args.repeat + 1):
            outcome = one_crash(app, redis, seeded.entity_id, args.as_of, env, work_dir)
            say(f"[{attempt}] kill -> re-queue {outcome['requeue_s']:.1f} s ({outcome['reason']}); "
                f"kill -> run {outcome['status']} {outcome['end_s']:.1f} s; {outcome['invoices']:,} invoices "
                f"(expected {seeded.expected_invoices:,}), {outcome['duplicates']} duplicates, "
                f"numbers gapless: {outcome['gapless']}")
    finally:
        clean_up(app, bench, created, keep_db=False, redis_url=args.redis, say=say)
    return 0


if __name__ == "__main__":
    sys.exit(main())
