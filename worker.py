"""An RQ worker that runs every job inside an application context.

    python worker.py [--burst] [--name NAME] [QUEUE ...]

Listens on the queues in priority order (billing, delivery, collection, default) unless queues
are named. `--burst` works off what is queued and exits. SIGTERM finishes the current job, then stops.

Delivery jobs run in this process, warm; the other queues' jobs in a forked work horse
(docs/architecture.md, "Workers" says why). While a horse works, the worker reports every
WORKER_HEARTBEAT_SECONDS; the scheduler re-queues a billing job whose worker stopped reporting
(app/billing/supervision.py). When Redis goes away the worker waits for it and carries on.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import socket
import sys
import time

from rq import Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, DEFAULT_WORKER_TTL
from rq.executions import Execution
from rq.job import Job
from rq.logutils import setup_loghandlers
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus
from rq.worker.base import SHUTDOWN_SIGNAL

from app import create_app
from app.agents.registry import AGENTS, TEMPLATES
from app.extensions import db
from app.queues import JOBS, QUEUES, REDIS_DOWN, RedisOutage, get_redis

# Short, idempotent, retried jobs whose cost is mostly what a fresh work horse has to load again
# (an invoice render is ~70 ms warm, ~500 ms of CPU in a fresh fork): run in the worker itself.
IN_PROCESS_QUEUES = frozenset({"delivery"})
# What jobs run, imported before forking so that no work horse imports it again: the modules of the
# declared jobs (app/queues.py JOBS; a job module imports the services it calls at module level) and
# of the agents' event handlers (the agent modules app/agents/registry.py finds).
# The documents' own modules are loaded by warm_up_documents' render.
JOB_MODULES = tuple(dict.fromkeys([spec.module for spec in JOBS.values()]
                                  + [spec.on_event.__module__ for spec in (*AGENTS.values(), *TEMPLATES.values())
                                     if spec.on_event is not None]))
# A render allocates ~200,000 short-lived objects: Python's default (700, 10, 10) makes ~300
# young collections per invoice. Fewer of them: 4-5 % less CPU per render (bench/render.py).
GC_THRESHOLD = (50_000, 20, 20)
# An idle worker renews its key every WORKER_TTL - 15 s and the key outlives it by 60 s: a dead idle
# worker leaves the list of live workers (/healthz, the RQ dashboard) within about two minutes.
WORKER_TTL = 60
SCHEDULER_CHECK_SECONDS = 15
SCHEDULER_STOP_SECONDS = 10


class QuietRQScheduler(RQScheduler):
    """RQ's scheduler process (it moves due retries and scheduled jobs onto their queues). It ends on
    a Redis error; this one ends with a line, not a traceback: the worker starts it again once Redis
    is back (AppWorker._after_outage)."""

    def work(self) -> None:
        try:
            super().work()
        except REDIS_DOWN as error:
            self.log.warning("RQ scheduler process %s: Redis is unreachable (%s); the worker starts it again "
                             "once Redis answers", os.getpid(), error)


class AppWorker(Worker):
    """Runs each job in an app context; a forked work horse opens its own DB connections.

    Rides out Redis outages: every place of the work loop that talks to Redis waits for it
    (RedisOutage: back-off, one log line per attempt) instead of ending the worker, then carries on.
    """

    flask_app = None
    log_result_lifespan = False  # "result is kept for 500 seconds" after every job tells a person nothing

    def __init__(self, *args, redis_retry_max: float = 30.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._prepared_job_id: str | None = None  # the job whose execution RQ has recorded
        self._scheduler_checked_at = 0.0
        self._burst = False  # a burst worker moves scheduled jobs once and never runs a scheduler process
        # RQ retries a dequeue that lost its connection itself; the same cap for its back-off.
        self.max_connection_wait_time = redis_retry_max
        self.outage = RedisOutage(self.connection, f"Worker {self.name}", self.log, max_delay=redis_retry_max,
                                  stopping=lambda: self._stop_requested)

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

    def _execute_job(self, job: Job, queue: Queue) -> None:
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

    # ------------------------------------------------------------ riding out a Redis outage
    # RQ ends the worker on a Redis error anywhere but in the blocking dequeue. These are the calls
    # of its work loop that talk to Redis; each one waits for Redis instead. A work horse (a fork)
    # never waits: its job fails or finishes as RQ decides.
    def _ride_out(self, error: BaseException) -> None:
        if self.is_horse:
            raise error
        if self.outage.wait(error):
            self._after_outage()

    def _after_outage(self) -> None:
        """Redis answers again: if it restarted empty (or our key expired meanwhile), register again;
        restart RQ's scheduler process (it ends on a Redis error) so retries and scheduled jobs move."""
        while not self._stop_requested:
            try:
                if not self.connection.exists(self.key):
                    self.register_birth()
                    self.connection.hset(self.key, "state", self.get_state())
                self._scheduler_checked_at = 0.0  # look now
                self._keep_scheduler_running()
                return
            except REDIS_DOWN as error:
                if not self.outage.wait(error):
                    return

    def _keep_scheduler_running(self) -> None:
        """RQ's scheduler process moves due retries (a chunk's) onto their queues; one worker runs it.
        RQ starts it again, or takes it over from a dead worker once that one's locks expire, only
        every 10 minutes; a Redis outage ends it at once (also one this worker did not notice, being
        busy meanwhile). Look every SCHEDULER_CHECK_SECONDS."""
        if self._burst or self._shutdown_requested_date is not None or self.scheduler is None:  # stopping: stopped on purpose
            return
        now = time.monotonic()
        if now - self._scheduler_checked_at < SCHEDULER_CHECK_SECONDS:
            return
        self._scheduler_checked_at = now
        if not (self.scheduler._process and self.scheduler._process.is_alive()):
            self.scheduler.acquire_locks(auto_start=True)

    def bootstrap(self, *args, **kwargs) -> None:
        again = False
        while True:
            try:
                if again:  # a half-done birth must not block the next one
                    self.connection.delete(self.key)
                return super().bootstrap(*args, **kwargs)
            except REDIS_DOWN as error:
                again = True
                self._ride_out(error)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        # RQ's own, but with a scheduler process that ends quietly when Redis goes away.
        self._burst = burst
        self.scheduler = QuietRQScheduler(self.queues, connection=self.connection, logging_level=logging_level,
                                          date_format=date_format, log_format=log_format, serializer=self.serializer)
        try:
            self.scheduler.acquire_locks()
            if not self.scheduler.acquired_locks:
                return
            if not burst:
                self.scheduler.start()
                return
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        except REDIS_DOWN as error:
            self._ride_out(error)  # _after_outage starts it

    def stop_scheduler(self) -> None:
        """RQ's, but it cannot hang the worker's exit: a scheduler process that got SIGTERM before it had
        installed its own handlers runs the worker's inherited one, which ignores it there, and RQ's
        join() waits for ever. After SCHEDULER_STOP_SECONDS it is killed (it holds no job; its locks expire)."""
        process = self.scheduler._process if self.scheduler else None
        if not (process and process.pid):
            return
        try:
            os.kill(process.pid, signal.SIGTERM)
        except OSError:
            pass
        process.join(SCHEDULER_STOP_SECONDS)
        if process.is_alive():
            self.log.warning("Worker %s: the scheduler process %s did not stop on SIGTERM; killed", self.name, process.pid)
            process.kill()
            process.join()

    def _pubsub_exception_handler(self, exc: Exception, pubsub, pubsub_thread) -> None:
        if isinstance(exc, REDIS_DOWN):  # the work loop reports the outage; this thread quietly retries
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        if pipeline is not None:  # only queued on the pipeline; its execute() is guarded by the caller
            return super().heartbeat(timeout, pipeline)
        while True:
            try:
                super().heartbeat(timeout)
                return self._keep_scheduler_running()
            except REDIS_DOWN as error:
                self._ride_out(error)
                if self._stop_requested:
                    return None

    def set_state(self, state: str, pipeline=None) -> None:
        if pipeline is not None:
            return super().set_state(state, pipeline)
        while True:
            try:
                return super().set_state(state)
            except REDIS_DOWN as error:
                self._ride_out(error)
                if self._stop_requested:
                    return None

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as error:
            self._ride_out(error)  # the horse goes on meanwhile; the next beat follows in due time

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN as error:
            self._ride_out(error)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as error:
            self._ride_out(error)  # not marked done: the next loop runs it again

    def prepare_execution(self, job: Job) -> Execution:
        execution = super().prepare_execution(job)
        self._prepared_job_id = job.id
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._prepared_job_id = None
        try:
            self._execute_job(job, queue)
        except REDIS_DOWN as error:
            # Redis went away around the job. After it ran (RQ waits for the work horse first), what
            # the job wrote to the database stays, and a billing job that Redis does not know as done
            # is re-queued by the scheduler. Before it started, it goes back to the front of its queue.
            self.log.warning("Worker %s: lost Redis around job %s", self.name, job.id)
            self._ride_out(error)
            if self._prepared_job_id != job.id and not self._stop_requested:
                self._put_back(job, queue)

    def _put_back(self, job: Job, queue: Queue) -> None:
        try:
            queue.intermediate_queue.remove(job.id)
            queue.enqueue_job(job, at_front=True)
        except REDIS_DOWN as error:  # down again: RQ's maintenance finds it in the intermediate queue
            self.log.warning("Worker %s: could not put job %s back (%s)", self.name, job.id, error)

    def set_shutdown_requested_date(self) -> None:
        try:
            super().set_shutdown_requested_date()
        except REDIS_DOWN:  # called from the SIGTERM handler: never fail there
            pass

    def teardown(self) -> None:
        try:
            super().teardown()
        except REDIS_DOWN as error:  # our key and registration expire by themselves
            self.log.warning("Worker %s: stopped without deregistering, Redis is unreachable (%s)", self.name, error)


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


class HousekeepingFilter(logging.Filter):
    """The system jobs that run every minute (outbox relay, schedule sync …) log at DEBUG, not INFO: the
    terminal shows runs, deliveries and errors, not "Job OK" twice a minute. Their failures still show
    (WARNING and above pass). LOG_HOUSEKEEPING=1 shows them all."""

    def __init__(self) -> None:
        super().__init__()
        from app.schedules.sync import SYSTEM_JOBS

        self.marks = tuple(f"({job.id})" for job in SYSTEM_JOBS) + tuple(
            f"completed {job.description} job" for job in SYSTEM_JOBS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        return not any(mark in message for mark in self.marks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Arbill RQ worker")
    parser.add_argument("queues", nargs="*", default=list(QUEUES), help=f"queues in priority order (default: {' '.join(QUEUES)})")
    parser.add_argument("--burst", action="store_true", help="work off what is queued, then exit")
    parser.add_argument("--name", help="worker name (default: host.pid)")
    args = parser.parse_args(argv)
    unknown = [q for q in args.queues if q not in QUEUES]
    if unknown:
        parser.error(f"unknown queue(s) {', '.join(unknown)}: use {', '.join(QUEUES)}")

    setup_loghandlers("INFO", name="rq.worker")  # RQ's own lines (they name the job); the jobs' lines come
    # through the app's handler (app/logs.py, set up by create_app below) with the job id on each
    if os.environ.get("LOG_HOUSEKEEPING", "") not in ("1", "true", "yes"):
        logging.getLogger("rq.worker").addFilter(HousekeepingFilter())
    app = create_app()
    AppWorker.flask_app = app
    with app.app_context():
        connection = get_redis()
        warm_up()
    name = args.name or f"{socket.gethostname()}.{os.getpid()}"  # what the audit says when a worker dies
    worker = None
    while worker is None:
        try:  # the constructor already talks to Redis
            worker = AppWorker(args.queues, connection=connection, name=name, worker_ttl=WORKER_TTL,
                               job_monitoring_interval=app.config["WORKER_HEARTBEAT_SECONDS"],
                               redis_retry_max=app.config["REDIS_RETRY_MAX_SECONDS"])
        except REDIS_DOWN as error:
            RedisOutage(connection, f"Worker {name}", logging.getLogger("rq.worker"),
                        max_delay=app.config["REDIS_RETRY_MAX_SECONDS"]).wait(error)
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
