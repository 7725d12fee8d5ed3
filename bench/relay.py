#!/usr/bin/env python
"""Benchmark of the outbox relay and its watchdog: prints figures, never passes or fails a test.

    python bench/relay.py --events N [--db SERVER_URL] [--redis URL] [--keep-db]

On the server of `--db` it creates `arbill_relay_<random>`, migrates it, writes N `invoice.issued`
events with COPY (untimed; with the default orchestration rules each goes to two agents), then
times, each once:

1. `relay_outbox()`: N events dispatched, 2N handlings committed, 2N jobs handed to Redis;
2. `requeue_unhandled()` with every job still queued (the grace period set to 0): a backlog, so
   it only asks Redis about the 2N jobs and enqueues nothing;
3. the same after `FLUSHDB` (Redis restarted empty): all 2N jobs enqueued again, each audited.

No worker runs: the jobs stay in the benchmark's Redis db (never db 0; flushed at the end).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BenchDatabase, clean_up, make_config  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server's maintenance database; a new database is made beside it")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="a Redis db it may flush (not db 0)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.redis.rstrip("/").endswith("/0") or args.redis.count("/") < 3:
        parser.error("--redis must name a db other than 0: the benchmark flushes it")
    return args


def seed_events(count: int) -> None:
    from app.agents.events import emit_many, event_row
    from app.extensions import db
    from app.models import LegalEntity

    entity = LegalEntity(code="BENCH", name="Bench GmbH", country="DE", currency="EUR", invoice_prefix="B",
                         timezone="Europe/Berlin")
    db.session.add(entity)
    db.session.flush()
    emit_many([event_row("invoice.issued", {"invoice_id": n}, legal_entity_id=entity.id) for n in range(1, count + 1)])
    db.session.commit()


def timed(label: str, function):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<58} {wall:8.2f} s wall  {cpu:7.2f} s CPU  {result}")
    return wall


def main() -> int:
    args = parse_args()
    from flask_migrate import upgrade

    from app import create_app
    from app.agents.events import relay_outbox, requeue_unhandled
    from app.queues import get_redis

    bench = BenchDatabase.new(args.db, "arbill_relay")
    app, created = None, False
    try:
        bench.create()
        created = True
        app = create_app(make_config(bench.url, args.redis, EVENT_HANDLING_GRACE_SECONDS=0))
        with app.app_context():
            upgrade()
            get_redis().flushdb()
            seed_events(args.events)
            print(f"{args.events:,} invoice.issued events, 2 subscribed agents each; {os.cpu_count()} CPUs; "
                  f"database {bench.name}")
            wall = timed("relay_outbox()", relay_outbox)
            print(f"{'':<58} {args.events / wall:8.0f} events/s")
            timed("requeue_unhandled(), every job still queued", requeue_unhandled)
            get_redis().flushdb()
            wall = timed("requeue_unhandled() after FLUSHDB: every job enqueued again", requeue_unhandled)
            print(f"{'':<58} {2 * args.events / wall:8.0f} jobs/s")
            print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        clean_up(app, bench, created, args.keep_db, args.redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
