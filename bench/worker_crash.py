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

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil
from redis import Redis

from benchlib import ROOT, BenchDatabase, SeededState, clean_up, create_app_on
from benchlib.options import (add_redis, add_smoke, apply_smoke, check_redis_flushable, interrupt_on_sigterm,
                              parser_for, require_postgres)
from benchlib.sampling import loadavg
from benchlib.timing import say, wait_until
from benchlib.workers import process_env
from billing_seed import seed, set_chunk_size

PATIENCE = 1800.0
# --smoke: crash detection within seconds (as tests/faults/test_run_drills.py sets it), unless the
# environment sets it
FAST = {"WORKER_HEARTBEAT_SECONDS": "1", "WORKER_LOST_SECONDS": "3", "RUN_SUPERVISE_SECONDS": "1"}


def _wait(condition, what: str):
    return wait_until(condition, what, PATIENCE)


def one_crash(app, redis: Redis, bench: BenchDatabase, state: SeededState, entity_id: int, as_of: date,
              env: dict[str, str], work_dir: Path, hold_lock: bool) -> dict:
    """hold_lock: the bench holds the entity's billing lock until A is killed, so A is surely mid-chunk
    (blocked in it) whatever the size; without it, A is killed one second into its chunk."""
    import psycopg

    from rq import Worker
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from sqlalchemy import select

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
            lock = psycopg.connect(bench.conninfo) if hold_lock else None
            if lock is not None:  # as lock_entity() takes it: no chunk of this entity commits meanwhile
                lock.execute("SELECT id FROM legal_entities WHERE id = %s FOR NO KEY UPDATE", (entity_id,))
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
            if lock is not None:
                lock.close()  # the lock goes: B goes on, A's chunk waits for the supervisor

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
            db.session.remove()
            state.reset(bench.conninfo)
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
    parser = parser_for(__doc__)
    parser.add_argument("--contracts", type=int, default=20_000, help="how many contracts to seed (default 20,000)")
    parser.add_argument("--db", required=True, help="a PostgreSQL URL; a fresh arbill_bench_* database is made there")
    add_redis(parser, "redis://127.0.0.1:6379/9")
    parser.add_argument("--chunk-size", type=int, default=None, help="the agent's chunk_size (default: 2000)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15), help="the run's as-of date")
    parser.add_argument("--repeat", type=int, default=1, help="how many crashes (default 1)")
    parser.add_argument("--hold-lock", action="store_true",
                        help="hold the entity's billing lock until A is killed, so A is surely mid-chunk "
                             "(--smoke implies it, and crash detection within seconds unless the environment sets it)")
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, contracts=200, chunk_size=50)
    global PATIENCE
    PATIENCE = 120.0 if args.smoke else PATIENCE
    require_postgres(parser, args.db, "the bench seeds with PostgreSQL's COPY")
    check_redis_flushable(parser, args.redis)

    interrupt_on_sigterm()
    bench = BenchDatabase.new(args.db, "arbill_bench")
    work_dir = Path(tempfile.mkdtemp(prefix="arbill_crash_"))
    app, created, problems = None, False, []
    try:
        bench.create()
        created = True
        app = create_app_on(bench, args.redis)
        chunk_size = set_chunk_size(app, args.chunk_size)
        seeded = seed(app, bench, args.contracts, args.as_of, random.Random(42))
        state = SeededState.snapshot(bench.conninfo)
        fast = {k: v for k, v in FAST.items() if k not in os.environ} if args.smoke else {}
        env = process_env(bench.sqlalchemy_url, args.redis, **fast)
        settings = {k: env.get(k, "default") for k in ("WORKER_HEARTBEAT_SECONDS", "WORKER_LOST_SECONDS",
                                                      "RUN_SUPERVISE_SECONDS")}
        say(f"{seeded.contracts:,} contracts ({seeded.expected_invoices:,} due periods), chunks of {chunk_size}, "
            f"2 workers + the scheduler; {settings}; load average {loadavg()}, {os.cpu_count()} CPUs; "
            f"logs in {work_dir}")
        redis = Redis.from_url(args.redis)
        for attempt in range(1, args.repeat + 1):
            outcome = one_crash(app, redis, bench, state, seeded.entity_id, args.as_of, env, work_dir,
                                args.hold_lock or args.smoke)
            say(f"[{attempt}] kill -> re-queue {outcome['requeue_s']:.1f} s ({outcome['reason']}); "
                f"kill -> run {outcome['status']} {outcome['end_s']:.1f} s; {outcome['invoices']:,} invoices "
                f"(expected {seeded.expected_invoices:,}), {outcome['duplicates']} duplicates, "
                f"numbers gapless: {outcome['gapless']}")
            if (outcome["status"] != "completed" or outcome["invoices"] != seeded.expected_invoices
                    or outcome["duplicates"] or not outcome["gapless"]):
                problems.append(attempt)
        say("correctness: " + ("OK" if not problems else f"PROBLEMS in crash(es) {problems}"))
        succeeded = not problems
    finally:
        clean_up(app, bench, created, keep_db=False, redis_url=args.redis, say=say)
        if locals().get("succeeded"):
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            say(f"logs of the workers and the scheduler kept in {work_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
