"""The RQ jobs: thin wrappers that call services, and the functions that enqueue them.

Workers run every job inside an application context (worker.py).

What reaches RQ carries ids and numbers only: RQ keeps a job's description, arguments, result and
error in Redis, shows them on the dashboard (/rq) and logs them, and an error's text can quote a
customer's data (an SMTP refusal quotes the address, a database error the row). So descriptions
and results name ids, and an error leaves a job as `JobFailed` (see `ids_only`); the services keep
the full story in our tables and audit, shown on our own pages.
"""
from __future__ import annotations

import logging
from functools import wraps
from typing import Any, Callable

from redis.client import Pipeline
from rq import Retry
from rq.timeouts import BaseTimeoutException

from app.queues import get_queue

log = logging.getLogger(__name__)
CHUNK_TIMEOUT = 30 * 60
CHUNK_RETRIES = 2


class JobFailed(RuntimeError):
    """A job's error as RQ gets it: which job failed and the error's type, with its stack, without its text."""


def _text_is_ids_only(error: Exception) -> bool:
    from app.delivery.service import DeliveryFailed

    return isinstance(error, (DeliveryFailed, BaseTimeoutException))


def ids_only(subject: str) -> Callable:
    """Decorate a job: an error it raises reaches RQ as `JobFailed("<subject> failed: <error type>")`,
    the subject formatted with the job's arguments (e.g. "billing run {0}"). Errors written to carry
    ids only (and RQ's own timeouts) pass as they are."""
    def decorate(job: Callable) -> Callable:
        @wraps(job)
        def run(*args, **kwargs):
            try:
                return job(*args, **kwargs)
            except Exception as error:
                if _text_is_ids_only(error):
                    raise
                failed = JobFailed(f"{subject.format(*args, **kwargs)} failed: {type(error).__name__}")
                raise failed.with_traceback(error.__traceback__) from None
        return run
    return decorate


# ------------------------------------------------------------------ enqueueing
def enqueue_billing_run(run_id: int, *, pipeline: Pipeline | None = None) -> str:
    job = get_queue("billing").enqueue(billing_run_job, run_id, job_id=f"billing-run-{run_id}",
                                       job_timeout=CHUNK_TIMEOUT, description=f"billing run {run_id}",
                                       pipeline=pipeline)
    return job.id


def chunk_job_id(run_id: int, first_contract_id: int) -> str:
    return f"billing-run-{run_id}-chunk-{first_contract_id}"


def enqueue_billing_chunk(run_id: int, contract_ids: list[int], settings: dict[str, Any], *, requeues: int = 0,
                          pipeline: Pipeline | None = None) -> str:
    """`requeues`: how often the supervisor put this chunk back (app/billing/supervision.py)."""
    job = get_queue("billing").enqueue(
        billing_chunk_job, run_id, contract_ids, settings,
        job_id=chunk_job_id(run_id, contract_ids[0]), job_timeout=CHUNK_TIMEOUT,
        retry=Retry(max=CHUNK_RETRIES, interval=[5, 30]), meta={"requeues": requeues} if requeues else None,
        description=f"billing run {run_id}: contracts #{contract_ids[0]}–#{contract_ids[-1]} ({len(contract_ids)})",
        pipeline=pipeline,
    )
    return job.id


def enqueue_relay() -> str:
    return get_queue("default").enqueue(relay_job, description="outbox relay").id


def relay_soon() -> None:
    """Ask a worker to dispatch the outbox now (after a commit that emitted events); if Redis is down the
    periodic relay catches up."""
    try:
        enqueue_relay()
    except Exception as error:  # noqa: BLE001 - nothing is lost, the events wait in the outbox
        log.warning("could not enqueue the outbox relay: %s", error)


def retry_policy(agent_key: str) -> Retry | None:
    """RQ Retry from the agent's retry setting (minutes), e.g. 1,5,30 → three retries with backoff."""
    from app.agents.registry import get_spec
    from app.agents.service import current_configuration, get_agent

    spec = get_spec(agent_key)
    agent = get_agent(agent_key)
    if spec.retry_setting is None or agent is None:
        return None
    minutes = [int(m) for m in str(current_configuration(agent)[spec.retry_setting]).split(",") if m.strip()]
    return Retry(max=len(minutes), interval=[m * 60 for m in minutes]) if minutes else None


def agent_event_job_id(agent_key: str, event_id: int) -> str:
    return f"{agent_key}-event-{event_id}"


def enqueue_agent_event(agent_key: str, event_id: int, retry: Retry | None, *, pipeline: Pipeline | None = None) -> str:
    """Enqueue the agent's job for the event, with `retry` (the agent's `retry_policy()`); with
    `pipeline`, the job is enqueued when the caller executes that pipeline."""
    from app.agents.registry import get_spec

    spec = get_spec(agent_key)
    job = get_queue(spec.queue).enqueue(
        agent_event_job, agent_key, event_id, job_id=agent_event_job_id(agent_key, event_id),
        description=f"{spec.name} on event {event_id}", retry=retry, pipeline=pipeline, job_timeout=spec.job_timeout,
    )
    return job.id


def resend_job_id(delivery_id: int) -> str:
    return f"invoice-resend-{delivery_id}"


def enqueue_resend(invoice_id: int, delivery_id: int, *, pipeline: Pipeline | None = None) -> str:
    from app.agents.registry import INVOICE_DELIVERY

    job = get_queue("delivery").enqueue(resend_job, invoice_id, delivery_id, job_id=resend_job_id(delivery_id),
                                        retry=retry_policy("invoice_delivery"), job_timeout=INVOICE_DELIVERY.job_timeout,
                                        description=f"resend invoice {invoice_id}", pipeline=pipeline)
    return job.id


@ids_only("delivery {1} (a resend) of invoice {0}")
def resend_job(invoice_id: int, delivery_id: int) -> str:
    from app.agents.invoice_delivery import is_final_attempt
    from app.delivery.service import deliver_invoice

    return deliver_invoice(invoice_id, delivery_id=delivery_id, final_attempt=is_final_attempt()).status


@ids_only("SEPA retries")
def collection_retries_job() -> int:
    """Daily (hourly, to be safe): present the SEPA retries whose day has come, per entity's today."""
    from app.models.types import utcnow
    from app.payments.collection import present_due_retries

    return present_due_retries(utcnow().date())


# ------------------------------------------------------------------ the jobs
@ids_only("billing run {0}")
def billing_run_job(run_id: int) -> None:
    from app.billing.runs import execute_run

    execute_run(run_id)


@ids_only("billing run {0}: chunk from contract {1[0]}")
def billing_chunk_job(run_id: int, contract_ids: list[int], settings: dict[str, Any]) -> None:
    from rq import get_current_job

    from app.billing.chunks import process_chunk

    job = get_current_job()
    # RQ counts retries down; a chunk put back by the supervisor may have done part of its work too.
    first_attempt = job is not None and job.retries_left == CHUNK_RETRIES and not job.meta.get("requeues")
    process_chunk(run_id, contract_ids, settings, first_attempt=first_attempt)


@ids_only("outbox relay")
def relay_job() -> dict[str, int]:
    """Every minute: hand new events to their agents, and enqueue again what Redis lost."""
    from app.agents.events import relay_outbox, requeue_unhandled

    result = relay_outbox()
    watched = requeue_unhandled()
    return {"dispatched": result.dispatched, "jobs": result.jobs, "stopped": result.stopped,
            "requeued": watched.requeued, "failed": watched.failed}


@ids_only("sweep of stale runs and deliveries")
def sweep_job() -> dict[str, int]:
    """Look after the billing runs (the scheduler does it every RUN_SUPERVISE_SECONDS too); settle
    deliveries whose worker died mid-send; enqueue again the resends whose job was lost."""
    from app.billing.supervision import supervise_runs
    from app.delivery.service import requeue_lost_resends, settle_lost_attempts

    runs = supervise_runs()
    return {"runs_requeued": runs.requeued, "runs_failed": runs.failed,
            "deliveries_unknown": settle_lost_attempts(), "resends_requeued": requeue_lost_resends()}


@ids_only("schedule sync")
def schedule_sync_job() -> dict[str, int]:
    from app.schedules.sync import sync_schedules

    result = sync_schedules()
    return {"added": result.added, "replaced": result.replaced, "kept": result.kept, "cancelled": result.cancelled}


@ids_only("schedule {0} at {1}")
def fire_schedule_job(schedule_id: int, slot_iso: str) -> str:
    """One scheduled fire: trigger the agent for this slot; once this job is done, schedule the next slot.

    The next slot reuses this job's stable id, so it is put into rq-scheduler by a follow-up job that
    runs only after this one has finished and been saved (else RQ's final save would overwrite it).
    """
    from datetime import datetime

    from rq import get_current_job
    from rq.job import Dependency

    from app.schedules.service import fire_schedule

    slot = datetime.fromisoformat(slot_iso)
    try:
        result = fire_schedule(schedule_id, slot)
        message = result.message
    except Exception as error:  # recorded; the next slot must still be scheduled
        import logging

        logging.getLogger(__name__).exception("schedule %s slot %s failed", schedule_id, slot_iso)
        message = f"failed: {type(error).__name__}"
    current = get_current_job()
    if current is None:
        reschedule_job(schedule_id, slot_iso)
    else:
        get_queue("default").enqueue(reschedule_job, schedule_id, slot_iso,
                                     depends_on=Dependency(jobs=[current], allow_failure=True),
                                     description=f"schedule #{schedule_id}: next slot after {slot_iso}")
    return message


@ids_only("schedule {0}: next slot after {1}")
def reschedule_job(schedule_id: int, after_iso: str) -> None:
    from datetime import datetime

    from app.schedules.sync import schedule_next_slot

    schedule_next_slot(schedule_id, datetime.fromisoformat(after_iso))


@ids_only("{0} on event {1}")
def agent_event_job(agent_key: str, event_id: int) -> Any:
    """Run an agent for an event; agents tolerate seeing an event twice."""
    from app.agents.registry import handler_for
    from app.extensions import db
    from app.models import Event

    from app.agents.events import NotActedYet, mark_handled

    event = db.session.get(Event, event_id)
    if event is None:
        return None
    try:
        outcome = handler_for(agent_key)(event)
    except NotActedYet as waiting:
        return str(waiting)
    mark_handled(event_id, agent_key)
    return outcome
