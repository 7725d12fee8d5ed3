"""An RQ worker that runs every job inside an application context.

    python worker.py [--burst] [QUEUE ...]

Listens on the queues in priority order (billing, delivery, collection, default) unless queues
are named. `--burst` works off what is queued and exits. SIGTERM finishes the current job, then stops.

Delivery jobs run in this process, warm; the other queues' jobs in a forked work horse
(docs/architecture.md, "Workers" says why).
"""
from __future__ import annotations

import argparse
import gc
import importlib
import signal
import sys

from rq import Worker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus
from rq.worker.base import SHUTDOWN_SIGNAL

from app import create_app
from app.extensions import db
from app.queues import QUEUES, get_redis

# Short, idempotent, retried jobs whose cost is mostly what a fresh work horse has to load again
# (an invoice render is ~70 ms warm, ~500 ms of CPU in a fresh fork): run in the worker itself.
IN_PROCESS_QUEUES = frozenset({"delivery"})
# What jobs import lazily; imported before forking, so that no work horse imports it again.
JOB_MODULES = ("app.agents.jobs", "app.agents.billing_run", "app.agents.invoice_delivery",
               "app.agents.payment_collection", "app.agents.events", "app.billing.runs", "app.billing.chunks",
               "app.delivery.service", "app.documents.service", "app.payments.collection",
               "app.schedules.service", "app.schedules.sync")
# A render allocates ~200,000 short-lived objects: Python's default (700, 10, 10) makes ~300
# young collections per invoice. Fewer of them: 4-5 % less CPU per render (bench/render.py).
GC_THRESHOLD = (50_000, 20, 20)


class AppWorker(Worker):
    """Runs each job in an app context; a forked work horse opens its own DB connections."""

    flask_app = None

    def perform_job(self, job, queue, *args, **kwargs):
        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()

    def main_work_horse(self, job, queue):
        # The horse is a fork: never reuse the parent's pooled database connections.
        with self.flask_app.app_context():
            db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)

    def execute_job(self, job: Job, queue: Queue) -> None:
        if queue.name not in IN_PROCESS_QUEUES:
            return super().execute_job(job, queue)
        # As RQ's SimpleWorker does: the job's timeout still applies (SIGALRM in this process).
        execution = self.prepare_execution(job)
        self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.origin not in IN_PROCESS_QUEUES:
            return super().get_heartbeat_ttl(job, working_time)
        # Nothing beats while an in-process job runs: cover its whole timeout (SimpleWorker's rule).
        return DEFAULT_WORKER_TTL if job.timeout == -1 else int(job.timeout or DEFAULT_WORKER_TTL) + 60

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        # A stop-job command for an in-process job finds no horse (pid 0 would be our own process group).
        if self.horse_pid:
            super().kill_horse(sig)


def warm_up() -> None:
    """Load now what jobs need, in the parent, so that no job (or forked work horse) loads it again."""
    from sqlalchemy.orm import configure_mappers

    from app.documents.warm import warm_up as warm_up_documents

    for name in JOB_MODULES:
        importlib.import_module(name)
    configure_mappers()
    # WeasyPrint, fonts, the stylesheet, the invoice template, the XSD, Babel's data: a real render.
    warm_up_documents()
    settle_heap()


def settle_heap() -> None:
    """After the warm-up: what is loaded now stays, out of the collector's way.

    Frozen objects are not scanned again, and a forked horse does not copy the memory pages the
    collector would touch (copy-on-write). bench/render.py calls this too.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Arbill RQ worker")
    parser.add_argument("queues", nargs="*", default=list(QUEUES), help=f"queues in priority order (default: {' '.join(QUEUES)})")
    parser.add_argument("--burst", action="store_true", help="work off what is queued, then exit")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    unknown = [q for q in args.queues if q not in QUEUES]
    if unknown:
        parser.error(f"unknown queue(s) {', '.join(unknown)}: use {', '.join(QUEUES)}")

    app = create_app()
    AppWorker.flask_app = app
    with app.app_context():
        connection = get_redis()
        warm_up()
    worker = AppWorker(args.queues, connection=connection, name=args.name)
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
