"""Looking after pending and running billing runs: is their work still carried by a job in Redis?

A run's outstanding work is each chunk that is not done yet (billing_run_chunks; a chunk is done
when each of its contracts has a run item) or, before its chunks are recorded, the run job itself.
Each is carried by an RQ job, which is

    queued, scheduled (a retry) or deferred           alive
    started, its worker reported within WORKER_LOST_SECONDS   alive
    started, its worker silent for longer             abandoned ("worker X died"): re-queued
    missing from Redis, or queued in no queue         lost ("Redis lost its job"): re-queued
    failed, after RQ's retries                        gone, with its error

A chunk is re-queued at most RUN_MAX_REQUEUES times (a chunk that kills every worker that takes it
must not go round for ever). A run that has nothing alive and has made no progress for
RUN_STALE_SECONDS is failed with the cause in words; the invoices it created stay, and a new run
bills whatever is missing. Every re-queue is in the run's audit trail.

Doing a chunk twice is safe: under the entity's billing lock a chunk re-checks which of its
contracts the run has recorded and which periods are invoiced (app/billing/chunks.py), and a
re-queued run job resumes only a run that has no chunks yet (app/billing/runs.py).

`supervise_runs()` is called by the scheduler process every RUN_SUPERVISE_SECONDS, by the
entrance before it refuses a new run, and by `flask billing sweep`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select, update

from app.audit import Actor, record
from app.billing.run_end import fail_run, finish_if_done
from app.extensions import db
from app.models import BillingRun, BillingRunChunk, BillingRunItem
from app.models.runs import ACTIVE_RUN_STATUSES
from app.models.types import utcnow
from app.queues import enqueue_billing_chunk, enqueue_billing_run, get_redis

log = logging.getLogger(__name__)

SUPERVISOR = Actor.system("run supervisor")
REDIS_LOST = "Redis lost its job"


# ------------------------------------------------------------------ what carries a run's work
@dataclass(frozen=True)
class Work:
    """A chunk of a run that is not done yet, or (chunk None) the run job of a run without chunks."""

    run_id: int
    job_id: str | None  # None: billed in the process that ran the run (`--inline`), no job
    chunk: BillingRunChunkView | None = None

    @property
    def what(self) -> str:
        return f"contracts #{self.chunk.first}–#{self.chunk.last}" if self.chunk else "the run job"

    @property
    def doing(self) -> str:
        return f"billing contracts #{self.chunk.first}–#{self.chunk.last}" if self.chunk else "starting the run"


@dataclass(frozen=True)
class BillingRunChunkView:
    id: int
    first: int
    last: int
    requeues: int


@dataclass(frozen=True)
class JobState:
    alive: bool
    cause: str | None = None  # why the job no longer carries the work
    requeue: bool = False  # the work can be done again by a new job
    worker: str | None = None


ALIVE = JobState(True)


def job_state(connection: Redis, job_id: str, *, now: float, lost_after: float,
              judge_heartbeats: bool = True) -> JobState:
    """What the RQ job `job_id` is doing about the work it carries (see the module's table).

    Workers change a job while this looks at it: a job leaves its queue for a worker, a started
    job ends. What decides is read in one transaction, or read again, so that a job in passing is
    never taken for a lost or abandoned one."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return JobState(False, REDIS_LOST, requeue=True)
    except Exception as error:  # noqa: BLE001 - a half-written job hash, e.g. after a flush mid-write
        log.warning("job %s cannot be read (%s): taken as lost", job_id, error)
        return JobState(False, REDIS_LOST, requeue=True)
    queue = Queue(job.origin, connection=connection)
    with connection.pipeline() as pipe:  # MULTI: its status and where it waits, at one instant
        pipe.hget(job.key, "status")
        pipe.lpos(queue.key, job.id)
        pipe.lpos(queue.intermediate_queue_key, job.id)  # taken by a worker, not started yet
        raw, in_queue, taken = pipe.execute()
    status = raw.decode() if raw else None
    if status is None:
        return JobState(False, REDIS_LOST, requeue=True)
    if status == JobStatus.QUEUED:
        return ALIVE if in_queue is not None or taken is not None else JobState(False, REDIS_LOST, requeue=True)
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return ALIVE
    if status == JobStatus.STARTED:
        worker, last = _last_report(connection, job)
        if not judge_heartbeats or (last is not None and now - last < lost_after):
            return JobState(True, worker=worker)
        if connection.hget(job.key, "status") != raw:  # it ended while we looked: judge it next time
            return ALIVE
        return JobState(False, f"worker {worker or 'unknown'} died", requeue=True, worker=worker)
    if status == JobStatus.FAILED:
        return JobState(False, f"its job failed: {_failure(job)}")
    if status == JobStatus.FINISHED:  # ended, yet (checked again before acting) its contracts are not all billed
        return JobState(False, "its job ended without billing all its contracts", requeue=True)
    return JobState(False, f"its job was {status}")


def _waiting(connection: Redis, job: Job) -> bool:
    """In its queue, or just taken from it by a worker (RQ's intermediate queue)."""
    queue = Queue(job.origin, connection=connection)
    return (connection.lpos(queue.key, job.id) is not None
            or connection.lpos(queue.intermediate_queue_key, job.id) is not None)


def _last_report(connection: Redis, job: Job) -> tuple[str | None, float | None]:
    """The worker running the job and when it last reported on it (a UNIX time), from RQ's executions.

    While a work horse runs a job, its worker renews the execution every WORKER_HEARTBEAT_SECONDS."""
    worker, last = job.worker_name, None
    for execution_id in connection.zrange(ExecutionRegistry(job_id=job.id, connection=connection).key, 0, -1):
        data = connection.hgetall(Execution(execution_id.decode(), job.id, connection).key)
        if not data:  # expired: nobody renewed it
            continue
        beat = float(data[b"last_heartbeat"])
        if last is None or beat > last:
            last, worker = beat, (data.get(b"worker_name") or b"").decode() or worker
    return worker, last


def _failure(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error recorded"


# ------------------------------------------------------------------ the supervisor
@dataclass
class Supervision:
    requeued: int = 0  # jobs put back on the queue
    failed: int = 0  # runs failed because their work is gone
    finished: int = 0  # runs completed here because their last chunk could not


def supervise_runs(entity_id: int | None = None, *, judge_heartbeats: bool = True,
                   now: datetime | None = None) -> Supervision:
    """Re-queue what dead workers and Redis lost; fail runs whose work is gone. Raises if Redis is down.

    `judge_heartbeats` False (right after a Redis outage, before the workers reported again) takes
    every started job as alive."""
    config = current_app.config
    now = now or utcnow()
    connection = get_redis()
    result = Supervision()
    query = select(BillingRun.id).where(BillingRun.status.in_(ACTIVE_RUN_STATUSES))
    if entity_id is not None:
        query = query.where(BillingRun.legal_entity_id == entity_id)
    run_ids = list(db.session.scalars(query.order_by(BillingRun.id)))
    db.session.rollback()
    for run_id in run_ids:
        _supervise_run(run_id, connection, result, now=now, judge_heartbeats=judge_heartbeats,
                       lost_after=float(config["WORKER_LOST_SECONDS"]), max_requeues=int(config["RUN_MAX_REQUEUES"]),
                       stale_after=timedelta(seconds=int(config["RUN_STALE_SECONDS"])))
    return result


def _supervise_run(run_id: int, connection: Redis, result: Supervision, *, now: datetime, judge_heartbeats: bool,
                   lost_after: float, max_requeues: int, stale_after: timedelta) -> None:
    run = db.session.get(BillingRun, run_id)
    if run is None or run.status not in ACTIVE_RUN_STATUSES:
        db.session.rollback()
        return
    work = outstanding_work(run)
    if work is None:  # every chunk is done: complete it if the last chunk could not
        db.session.rollback()
        result.finished += finish_if_done(run_id)
        return
    gone: list[tuple[Work, JobState]] = []
    alive = False
    for item in work:
        if item.job_id is None:  # billed in-process: only its progress tells
            gone.append((item, JobState(False, "in-process")))
            continue
        state = job_state(connection, item.job_id, now=now.timestamp(), lost_after=lost_after,
                          judge_heartbeats=judge_heartbeats)
        if state.alive:
            alive = True
        elif state.requeue and (item.chunk is None or item.chunk.requeues < max_requeues) and _requeue(
                run, item, state, connection):
            result.requeued += 1
            alive = True
        else:
            gone.append((item, state))
    db.session.rollback()
    last_progress = run.heartbeat_at or run.started_at or run.queued_at
    if alive or not gone or last_progress > now - stale_after:
        return
    if fail_run(run_id, _cause(run, gone, now, max_requeues), SUPERVISOR):
        result.failed += 1
        log.warning("run %s failed: %s", run_id, gone[0][1].cause)


def outstanding_work(run: BillingRun) -> list[Work] | None:
    """The run's work not done yet; None when it has chunks and all are done."""
    if run.status == "pending":
        return [Work(run.id, run.rq_job_id)]
    chunks = db.session.execute(
        select(BillingRunChunk.id, BillingRunChunk.first_contract_id, BillingRunChunk.last_contract_id,
               BillingRunChunk.size, BillingRunChunk.job_id, BillingRunChunk.requeues, _billed_count())
        .where(BillingRunChunk.billing_run_id == run.id).order_by(BillingRunChunk.first_contract_id)).all()
    if not chunks:  # the run job has not recorded the chunks yet (or died before)
        return [Work(run.id, run.rq_job_id)]
    work = [Work(run.id, c.job_id, BillingRunChunkView(c.id, c.first_contract_id, c.last_contract_id, c.requeues))
            for c in chunks if c.billed < c.size]
    return work or None


def _billed_count():
    """Per chunk row: how many of its contracts have a run item (the chunk's contracts are all the
    run's contracts in first..last)."""
    return (select(func.count()).select_from(BillingRunItem)
            .where(BillingRunItem.billing_run_id == BillingRunChunk.billing_run_id,
                   BillingRunItem.contract_id.between(BillingRunChunk.first_contract_id,
                                                      BillingRunChunk.last_contract_id))
            .scalar_subquery().label("billed"))


def _chunk_done(chunk_id: int) -> bool:
    row = db.session.execute(select(BillingRunChunk.size, _billed_count()).where(BillingRunChunk.id == chunk_id)).one()
    return row.billed >= row.size


# ------------------------------------------------------------------ re-queueing
def _requeue(run: BillingRun, work: Work, state: JobState, connection: Redis) -> bool:
    """Put the work back on its queue, once (a concurrent supervisor finds it taken), with an audit entry."""
    if work.chunk is not None:
        taken = db.session.execute(
            update(BillingRunChunk).where(BillingRunChunk.id == work.chunk.id,
                                          BillingRunChunk.requeues == work.chunk.requeues)
            .values(requeues=BillingRunChunk.requeues + 1)).rowcount
        # Looked at again under the row lock: a chunk that committed meanwhile needs nothing.
        if not taken or _chunk_done(work.chunk.id):
            db.session.rollback()
            return False
        chunk = db.session.get(BillingRunChunk, work.chunk.id)
        with connection.pipeline() as pipe:
            pipe.multi()  # one transaction: the old job goes, the new one comes
            _discard(connection, work.job_id, pipe)
            enqueue_billing_chunk(run.id, chunk.contract_ids, chunk.settings, requeues=chunk.requeues, pipeline=pipe)
            pipe.execute()
        action, count = "billing_run.chunk_requeued", chunk.requeues
    else:
        # Looked at again: a run job that recorded the chunks meanwhile needs nothing.
        if db.session.scalar(select(BillingRunChunk.id).where(BillingRunChunk.billing_run_id == run.id).limit(1)):
            db.session.rollback()
            return False
        with connection.pipeline() as pipe:
            pipe.multi()
            _discard(connection, work.job_id, pipe)
            enqueue_billing_run(run.id, pipeline=pipe)
            pipe.execute()
        action, count = "billing_run.job_requeued", None
    record(action, "billing_run", run.id, SUPERVISOR, legal_entity_id=run.legal_entity_id, billing_run_id=run.id,
           reason=state.cause, worker=state.worker, job_id=work.job_id,
           contracts=work.what if work.chunk else None, requeues=count)
    db.session.commit()
    log.warning("run %s: re-queued %s (%s)", run.id, work.what, state.cause)
    return True


def _discard(connection: Redis, job_id: str, pipe) -> None:
    """Queue the removal of what is left of a job: its hash, its entries in the queue and the started registry."""
    try:
        origin = Job.fetch(job_id, connection=connection).origin
    except Exception:  # noqa: BLE001 - gone or unreadable: only its key may be left
        origin = "billing"
    queue = Queue(origin, connection=connection)
    started = StartedJobRegistry(origin, connection=connection)
    for entry in connection.zrange(started.key, 0, -1):
        if entry.decode().startswith(f"{job_id}:"):
            pipe.zrem(started.key, entry)
    pipe.lrem(queue.key, 0, job_id)
    pipe.lrem(queue.intermediate_queue_key, 0, job_id)
    pipe.delete(Job.key_for(job_id))


# ------------------------------------------------------------------ the cause, in words
def _cause(run: BillingRun, gone: list[tuple[Work, JobState]], now: datetime, max_requeues: int) -> str:
    work, state = next(((w, s) for w, s in gone if s.worker), None) or gone[0]
    again = ""
    if work.chunk is not None and state.requeue:  # it would have been put back, but not again
        again = (f" (put back {work.chunk.requeues} time(s) already, RUN_MAX_REQUEUES={max_requeues})"
                 if work.chunk.requeues else f" (not put back: RUN_MAX_REQUEUES={max_requeues})")
    if state.cause == "in-process":
        last = run.heartbeat_at or run.started_at or run.queued_at
        minutes = int((now - last).total_seconds() // 60)
        text = (f"no progress for {minutes} minute(s) since {last:%Y-%m-%d %H:%M} UTC: the process billing it "
                "in-line (flask billing run --inline) stopped" if run.status == "running" else
                f"not started for {minutes} minute(s): the process that recorded it stopped before queuing it")
    elif all(s.cause == REDIS_LOST for _w, s in gone):
        text = f"Redis lost the run's jobs (Redis restarted or was flushed){again}"
        gone = gone[:1]  # said for all of them
    elif state.worker:
        text = f"worker {state.worker} died while {work.doing}{again}"
    else:
        text = f"the job {work.doing} {state.cause.removeprefix('its job ')}{again}"
    if len(gone) > 1:
        text += f"; {len(gone) - 1} more chunk(s) without a live job"
    invoices = f"its {run.invoices_created} invoice(s) are kept" if run.invoices_created else "it created no invoices"
    return f"{text}. {invoices[0].upper()}{invoices[1:]}; a new run bills whatever is still missing."
