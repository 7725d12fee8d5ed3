"""The scheduler process (`flask scheduler run`): rq-scheduler's loop, plus what only one process does.

Each pass (every `interval` seconds) it leaves a heartbeat for /healthz, moves due jobs onto their
queues, puts the schedules back into Redis if Redis lost them (restarted empty or flushed), and
every RUN_SUPERVISE_SECONDS looks after the running billing runs (app/billing/supervision.py):
that runs here, not as a queued job, so that it is not stuck behind the chunks it looks after.

When Redis is unreachable it waits (RedisOutage: back-off, one log line per attempt, one when
Redis is back) and carries on; SIGTERM stops it at once, or after the pass it is in.
"""
from __future__ import annotations

import logging
import signal
import time
import warnings
from contextlib import suppress

from flask import current_app
from rq_scheduler import Scheduler

from app.queues import REDIS_DOWN, RedisOutage
from app.schedules.sync import HEARTBEAT_KEY, SYNCED_KEY, sync_schedules

log = logging.getLogger(__name__)
# rq-scheduler asks crontab for the next slot with a `now` of its own (UTC, use_local_timezone=False):
# crontab's notice about its future default for a missing `now` does not concern us, and it filled the
# terminal on every start.
warnings.filterwarnings("ignore", message=r"Version 0\.22\.0\+ of crontab", category=FutureWarning)


class HeartbeatScheduler(Scheduler):
    """rq-scheduler that leaves a heartbeat in Redis on every pass, for /healthz."""

    def enqueue_jobs(self):
        self.connection.set(HEARTBEAT_KEY, "alive", ex=max(30, int(self._interval) * 3))
        return super().enqueue_jobs()


class SchedulerProcess(HeartbeatScheduler):
    """The loop of `flask scheduler run`; needs an application context."""

    def __init__(self, *args, supervise: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        config = current_app.config
        self.supervise_every = float(config["RUN_SUPERVISE_SECONDS"]) if supervise else None
        self.lost_after = float(config["WORKER_LOST_SECONDS"])
        self.outage = RedisOutage(self.connection, "Scheduler", log, max_delay=config["REDIS_RETRY_MAX_SECONDS"],
                                  stopping=lambda: self._stopping)
        self._stopping = self._in_pass = self._born = False
        self._last_supervised: float | None = None
        self._redis_since = time.monotonic()  # since when Redis has answered without a break

    def _install_signal_handlers(self) -> None:
        def stop(signum, frame):
            log.info("Scheduler: stopping (%s)", signal.Signals(signum).name)
            self._stopping = True
            if not self._in_pass:  # in a pass: stop after it, never half-way through a re-queue
                raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def run(self, burst: bool = False) -> None:
        self._install_signal_handlers()
        try:
            while not self._stopping:
                began = time.monotonic()
                try:
                    self._pass()
                except REDIS_DOWN as error:
                    if self.outage.wait(error):
                        self._redis_since, self._born = time.monotonic(), False
                    continue
                if burst:
                    log.info("Scheduler: done, quitting")
                    break
                self._sleep(self._interval - (time.monotonic() - began))
        finally:
            if self._born:
                with suppress(*REDIS_DOWN):  # the lock and our key expire by themselves
                    self.remove_lock()
                    self.register_death()

    def _pass(self) -> None:
        self._in_pass = True
        try:
            if not self._born:
                self.register_birth()
                self._born = True
            self.heartbeat()
            if not self.connection.exists(SYNCED_KEY):
                result = sync_schedules(self.connection)
                log.warning("Scheduler: Redis had lost the schedules (restarted empty, or flushed): %d schedule(s) "
                            "and the system jobs put back", result.added + result.replaced + result.kept)
            if self.acquire_lock():
                self.enqueue_jobs()
                self.heartbeat()
                self.remove_lock()
            else:
                log.warning("Scheduler: another scheduler holds the lock; skipping this pass")
            self._supervise_if_due()
        finally:
            self._in_pass = False

    def _supervise_if_due(self) -> None:
        from app.billing.supervision import supervise_runs
        from app.extensions import db

        now = time.monotonic()
        if self.supervise_every is None or (
                self._last_supervised is not None and now - self._last_supervised < self.supervise_every):
            return
        self._last_supervised = now
        # Right after an outage the workers have not reported yet: judge their heartbeats only once
        # Redis has been back long enough for every live worker to have reported.
        judge = now - self._redis_since >= self.lost_after
        try:
            supervise_runs(judge_heartbeats=judge)
        except REDIS_DOWN:
            raise
        except Exception:  # noqa: BLE001 - e.g. the database is down: log it, try again next time
            log.exception("Scheduler: supervising the billing runs failed")
        finally:
            db.session.remove()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
