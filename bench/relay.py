#!/usr/bin/env python
"""Benchmark of the outbox relay and its watchdog: prints figures, never passes or fails a test.

    python bench/relay.py --events N [--db SERVER_URL|sqlite] [--redis URL] [--keep-db] [--smoke]

On the server of `--db` it creates `arbill_relay_<random>` (or, with `--db sqlite`, a SQLite file), migrates it, writes N `invoice.issued`
events with COPY (untimed; with the default orchestration rules each goes to two agents), then
times, each once:

1. `relay_outbox()`: N events dispatched, 2N handlings committed, 2N jobs handed to Redis;
2. `requeue_unhandled()` with every job still queued (the grace period set to 0): a backlog, so
   it only asks Redis about the 2N jobs and enqueues nothing;
3. the same after `FLUSHDB` (Redis restarted empty): all 2N jobs enqueued again, each audited.

No worker runs: the jobs stay in the benchmark's Redis db (never db 0; flushed at the end). It checks
that every event was dispatched and every job handed on, and re-queued after FLUSHDB (exit 1 if not).
"""
from __future__ import annotations

import argparse
import os
import sys

from benchlib import BenchDatabase, clean_up, create_app_on
from benchlib.options import add_db, add_keep_db, add_redis, add_smoke, apply_smoke, check_redis_flushable, parser_for
from benchlib.sampling import peak_rss_mb
from benchlib.timing import timed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    add_db(parser, "arbill_relay", sqlite=True)
    add_redis(parser, "redis://127.0.0.1:6379/12")
    add_keep_db(parser)
    add_smoke(parser)
    args = parser.parse_args(argv)
    apply_smoke(args, parser, events=200)
    check_redis_flushable(parser, args.redis)
    return args


def seed_events(count: int) -> None:
    from app.outbox import emit_many, event_row
    from app.extensions import db
    from app.models import LegalEntity

    entity = LegalEntity(code="BENCH", name="Bench GmbH", country="DE", currency="EUR", invoice_prefix="B",
                         timezone="Europe/Berlin")
    db.session.add(entity)
    db.session.flush()
    emit_many([event_row("invoice.issued", {"invoice_id": n}, legal_entity_id=entity.id) for n in range(1, count + 1)])
    db.session.commit()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.agents.events import relay_outbox, requeue_unhandled
    from app.queues import get_redis

    bench = BenchDatabase.new(args.db, "arbill_relay")
    app, created, problems = None, False, []
    results = {}

    def keep(name, function):
        return lambda: results.setdefault(name, function())

    try:
        bench.create()
        created = True
        app = create_app_on(bench, args.redis, EVENT_HANDLING_GRACE_SECONDS=0)
        with app.app_context():
            get_redis().flushdb()
            seed_events(args.events)
            print(f"{args.events:,} invoice.issued events, 2 subscribed agents each; {os.cpu_count()} CPUs; "
                  f"database {bench.name}")
            wall = timed("relay_outbox()", keep("relay", relay_outbox))
            print(f"{'':<58} {args.events / wall:8.0f} events/s")
            timed("requeue_unhandled(), every job still queued", keep("backlog", requeue_unhandled))
            get_redis().flushdb()
            wall = timed("requeue_unhandled() after FLUSHDB: every job enqueued again", keep("lost", requeue_unhandled))
            print(f"{'':<58} {2 * args.events / wall:8.0f} jobs/s")
            print(f"peak RSS {peak_rss_mb():.0f} MB")
        jobs = 2 * args.events
        if (results["relay"].dispatched, results["relay"].jobs) != (args.events, jobs):
            problems.append(f"relay_outbox() dispatched {results['relay'].dispatched} events, {results['relay'].jobs} "
                            f"jobs; expected {args.events}, {jobs}")
        if results["backlog"].requeued:
            problems.append(f"{results['backlog'].requeued} jobs enqueued again although all were queued")
        if (results["lost"].requeued, results["lost"].failed) != (jobs, 0):
            problems.append(f"after FLUSHDB {results['lost']}, expected {jobs} requeued and none failed")
        print("correctness: " + ("OK" if not problems else "PROBLEMS: " + "; ".join(problems)))
    finally:
        clean_up(app, bench, created, args.keep_db, args.redis)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
