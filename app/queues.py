"""Redis and the RQ queues. Redis only carries jobs: the database is the source of truth."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Retry
from rq.job import Dependency

# Listened to in this order: billing first on billing day.
QUEUES = ("billing", "delivery", "collection", "default")
# What redis-py raises while the server is down, restarting or unreachable.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


@lru_cache(maxsize=8)
def _redis_for(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def get_redis(url: str | None = None) -> Redis:
    return _redis_for(url or current_app.config["REDIS_URL"])


def get_queue(name: str = "default", url: str | None = None) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}: use one of {', '.join(QUEUES)}")
    return Queue(name, connection=get_redis(url))


# ------------------------------------------------------------------ the jobs, declared
@dataclass(frozen=True)
class JobSpec:
    """Where a job runs and how long it may take. `queue` None: the caller names it (an agent's job runs
    on the agent's queue, app/agents/registry.py); `timeout` None: RQ's default (180 s) unless the caller
    gives one; `retries`: RQ retry intervals in seconds, one per retry (empty: no retry unless the caller
    gives a policy, e.g. from an agent's settings)."""

    path: str
    queue: str | None
    timeout: int | None = None
    retries: tuple[int, ...] = ()

    @property
    def module(self) -> str:
        return self.path.rpartition(".")[0]

    def retry(self) -> Retry | None:
        return Retry(max=len(self.retries), interval=list(self.retries)) if self.retries else None


CHUNK_TIMEOUT = 30 * 60
# Seconds a delivery job may run before RQ stops it (the Invoice Delivery Agent's job_timeout).
DELIVERY_TIMEOUT = 180

# Every job the app enqueues or schedules, by dotted path: callers name a job, they never import it
# (app/agents/jobs.py imports the services; the services only import this module).
# tests/unit/test_job_paths.py proves each path resolves and each queue is one the worker listens on.
JOBS: dict[str, JobSpec] = {spec.path: spec for spec in (
    JobSpec("app.agents.jobs.billing_run_job", "billing", CHUNK_TIMEOUT),
    JobSpec("app.agents.jobs.billing_chunk_job", "billing", CHUNK_TIMEOUT, retries=(5, 30)),
    JobSpec("app.agents.jobs.agent_event_job", None),  # the agent's queue and job_timeout
    JobSpec("app.agents.jobs.agent_run_job", None),  # the agent's queue and job_timeout
    JobSpec("app.agents.jobs.resend_job", "delivery"),  # Invoice Delivery's job_timeout and retry setting
    JobSpec("app.agents.jobs.dunning_notice_job", "delivery", DELIVERY_TIMEOUT),
    JobSpec("app.agents.jobs.relay_job", "default"),
    JobSpec("app.agents.jobs.sweep_job", "default"),
    JobSpec("app.agents.jobs.schedule_sync_job", "default"),
    JobSpec("app.agents.jobs.collection_retries_job", "collection"),
    JobSpec("app.agents.jobs.fire_schedule_job", "billing"),
    JobSpec("app.agents.jobs.reschedule_job", "default"),
)}
BILLING_RUN_JOB, BILLING_CHUNK_JOB = "app.agents.jobs.billing_run_job", "app.agents.jobs.billing_chunk_job"
AGENT_EVENT_JOB, RESEND_JOB = "app.agents.jobs.agent_event_job", "app.agents.jobs.resend_job"
RELAY_JOB, FIRE_SCHEDULE_JOB = "app.agents.jobs.relay_job", "app.agents.jobs.fire_schedule_job"
RESCHEDULE_JOB, AGENT_RUN_JOB = "app.agents.jobs.reschedule_job", "app.agents.jobs.agent_run_job"
DUNNING_NOTICE_JOB = "app.agents.jobs.dunning_notice_job"
CHUNK_RETRIES = len(JOBS[BILLING_CHUNK_JOB].retries)


def job_spec(path: str) -> JobSpec:
    try:
        return JOBS[path]
    except KeyError:
        raise ValueError(f"job {path!r} is not declared in app/queues.py JOBS") from None


def launch_task(path: str, *args: Any, queue: str | None = None, job_id: str | None = None,
                timeout: int | None = None, retry: Retry | None = None, description: str | None = None,
                depends_on: Dependency | None = None, pipeline: Any = None, meta: dict | None = None) -> str:
    """Enqueue the declared job `path` with `args` and return its id; queue, timeout and retry default
    to the declaration's. With `pipeline`, the job is enqueued when the caller executes that pipeline."""
    spec = job_spec(path)
    name = queue or spec.queue
    if name is None:
        raise ValueError(f"job {path!r} has no declared queue: name one")
    job = get_queue(name).enqueue(
        path, *args, job_id=job_id, job_timeout=timeout if timeout is not None else spec.timeout,
        retry=retry if retry is not None else spec.retry(), description=description, depends_on=depends_on,
        meta=meta, pipeline=pipeline,
    )
    return job.id


def schedule_task(scheduler: Any, when: datetime, path: str, *args: Any, job_id: str,
                  description: str) -> None:
    """Put the declared job `path` into rq-scheduler (a `Scheduler`), due at `when`, on its declared queue."""
    spec = job_spec(path)
    scheduler.enqueue_at(when, path, *args, job_id=job_id, queue_name=spec.queue, job_description=description)


# ------------------------------------------------------------------ job ids and the app's enqueue calls
def billing_run_job_id(run_id: int) -> str:
    return f"billing-run-{run_id}"


def chunk_job_id(run_id: int, first_contract_id: int) -> str:
    return f"billing-run-{run_id}-chunk-{first_contract_id}"


def agent_event_job_id(agent_key: str, event_id: int) -> str:
    return f"{agent_key}-event-{event_id}"


def agent_run_job_id(agent_run_id: int) -> str:
    return f"agent-run-{agent_run_id}"


def resend_job_id(delivery_id: int) -> str:
    return f"invoice-resend-{delivery_id}"


def enqueue_billing_run(run_id: int, *, pipeline: Any = None) -> str:
    return launch_task(BILLING_RUN_JOB, run_id, job_id=billing_run_job_id(run_id),
                       description=f"billing run {run_id}", pipeline=pipeline)


def enqueue_billing_chunk(run_id: int, contract_ids: list[int], settings: dict[str, Any], *, requeues: int = 0,
                          pipeline: Any = None) -> str:
    """`requeues`: how often the supervisor put this chunk back (app/billing/supervision.py)."""
    return launch_task(
        BILLING_CHUNK_JOB, run_id, contract_ids, settings, job_id=chunk_job_id(run_id, contract_ids[0]),
        meta={"requeues": requeues} if requeues else None, pipeline=pipeline,
        description=f"billing run {run_id}: contracts #{contract_ids[0]}–#{contract_ids[-1]} ({len(contract_ids)})",
    )


def enqueue_relay() -> str:
    return launch_task(RELAY_JOB, description="outbox relay")


def relay_soon() -> None:
    """Ask a worker to dispatch the outbox now (after a commit that emitted events); if Redis is down the
    periodic relay catches up."""
    try:
        enqueue_relay()
    except Exception as error:  # noqa: BLE001 - nothing is lost, the events wait in the outbox
        logging.getLogger(__name__).warning("could not enqueue the outbox relay: %s", error)


class RedisOutage:
    """Waits out a Redis outage for a long-running process (the worker, the scheduler).

    `wait()` pings Redis with exponential back-off (1, 2, 4 … seconds, at most `max_delay`), logs one
    line per attempt saying when it retries and one line when Redis answers again. It sleeps in
    short slices, so a stop request (`stopping()` true, e.g. after SIGTERM) ends the wait at once.
    """

    def __init__(self, connection: Redis, who: str, log: logging.Logger, *, max_delay: float = 30.0,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.connection, self.who, self.log = connection, who, log
        self.max_delay, self.stopping = max(1.0, float(max_delay)), stopping

    def wait(self, error: BaseException) -> bool:
        """Return once Redis answers (True), or when a stop is requested meanwhile (False)."""
        began, delay = time.monotonic(), 1.0
        while True:
            self.log.warning("%s: Redis is unreachable (%s); retrying in %d s", self.who, _one_line(error), delay)
            if not self._sleep(delay):
                return False
            try:
                self.connection.ping()
            except REDIS_DOWN as again:
                error, delay = again, min(delay * 2, self.max_delay)
                continue
            self.log.warning("%s: Redis is back after %d s", self.who, round(time.monotonic() - began))
            return True

    def _sleep(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.25))
        return False


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
