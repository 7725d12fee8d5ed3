"""An RQ worker that runs every job inside an application context.

    python worker.py [--burst] [QUEUE ...]

Listens on the queues in priority order (billing, delivery, collection, default) unless queues
are named. `--burst` works off what is queued and exits. SIGTERM finishes the current job, then stops.
"""
from __future__ import annotations

import argparse
import sys

from rq import Worker

from app import create_app
from app.extensions import db
from app.queues import QUEUES, get_redis


class AppWorker(Worker):
    """Runs each job in an app context; the forked work horse opens its own DB connections."""

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
        # Parse the invoice stylesheet and fonts once here; every forked job inherits them.
        from app.documents.pdf import warm_up

        warm_up()
    worker = AppWorker(args.queues, connection=connection, name=args.name)
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
