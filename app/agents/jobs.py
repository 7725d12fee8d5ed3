"""The RQ jobs: thin wrappers that call services.

Nothing in app/ imports this module: jobs are enqueued by dotted path through app/queues.py
(`launch_task`, the declarations in `JOBS`), so this module may import every service it calls.
Workers run every job inside an application context (worker.py).

What reaches RQ carries ids and numbers only: RQ keeps a job's description, arguments, result and
error in Redis, shows them on the dashboard (/rq) and logs them, and an error's text can quote a
customer's data (an SMTP refusal quotes the address, a database error the row). So descriptions
and results name ids, and an error leaves a job as `JobFailed` (see `ids_only`); the services keep
the full story in our tables and audit, shown on our own pages.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import wraps
from typing import Any, Callable

from rq import get_current_job
from rq.job import Dependency
from rq.timeouts import BaseTimeoutException

from app.agents.events import mark_handled, relay_outbox, requeue_unhandled
from app.agents.builtin.invoice_delivery import deliver, is_final_attempt
from app.agents.registry import handler_for
from app.agents.runs import execute_agent_run
from app.agents.service import get_agent
from app.billing.runs import execute_run
from app.billing.chunks import process_chunk
from app.billing.supervision import supervise_runs
from app.delivery.service import requeue_lost_resends, settle_lost_attempts
from app.dunning.service import send_notice
from app.errors import DeliveryFailed, JobFailed, NotActedYet
from app.extensions import db
from app.models import Event
from app.models.types import utcnow
from app.payments.collection import present_due_retries
from app.queues import CHUNK_RETRIES, RESCHEDULE_JOB, launch_task
from app.schedules.service import fire_schedule
from app.schedules.sync import schedule_next_slot, sync_schedules

log = logging.getLogger(__name__)


def _text_is_ids_only(error: Exception) -> bool:
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


@ids_only("delivery {1} (a resend) of invoice {0}")
def resend_job(invoice_id: int, delivery_id: int) -> str:
    return deliver(invoice_id, delivery_id=delivery_id, final_attempt=is_final_attempt()).status


@ids_only("dunning notice {0}")
def dunning_notice_job(notice_id: int) -> str:
    """E-mail one payment reminder with its PDF (at most once; its outcome is on the reminder)."""
    return send_notice(notice_id)


@ids_only("SEPA retries")
def collection_retries_job() -> int:
    """Daily (hourly, to be safe): present the SEPA retries whose day has come, per entity's today."""
    return present_due_retries(utcnow().date())


# ------------------------------------------------------------------ the jobs
@ids_only("billing run {0}")
def billing_run_job(run_id: int) -> None:
    execute_run(run_id)


@ids_only("billing run {0}: chunk from contract {1[0]}")
def billing_chunk_job(run_id: int, contract_ids: list[int], settings: dict[str, Any]) -> None:
    job = get_current_job()
    # RQ counts retries down; a chunk put back by the supervisor may have done part of its work too.
    first_attempt = job is not None and job.retries_left == CHUNK_RETRIES and not job.meta.get("requeues")
    process_chunk(run_id, contract_ids, settings, first_attempt=first_attempt)


@ids_only("outbox relay")
def relay_job() -> dict[str, int]:
    """Every minute: hand new events to their agents, and enqueue again what Redis lost."""
    result = relay_outbox()
    watched = requeue_unhandled()
    return {"dispatched": result.dispatched, "jobs": result.jobs, "stopped": result.stopped,
            "requeued": watched.requeued, "failed": watched.failed}


@ids_only("sweep of stale runs and deliveries")
def sweep_job() -> dict[str, int]:
    """Look after the billing runs (the scheduler does it every RUN_SUPERVISE_SECONDS too); settle
    deliveries whose worker died mid-send; enqueue again the resends whose job was lost."""
    runs = supervise_runs()
    return {"runs_requeued": runs.requeued, "runs_failed": runs.failed,
            "deliveries_unknown": settle_lost_attempts(), "resends_requeued": requeue_lost_resends()}


@ids_only("schedule sync")
def schedule_sync_job() -> dict[str, int]:
    result = sync_schedules()
    return {"added": result.added, "replaced": result.replaced, "kept": result.kept, "cancelled": result.cancelled}


@ids_only("schedule {0} at {1}")
def fire_schedule_job(schedule_id: int, slot_iso: str) -> str:
    """One scheduled fire: trigger the agent for this slot; once this job is done, schedule the next slot.

    The next slot reuses this job's stable id, so it is put into rq-scheduler by a follow-up job that
    runs only after this one has finished and been saved (else RQ's final save would overwrite it).
    """
    slot = datetime.fromisoformat(slot_iso)
    try:
        result = fire_schedule(schedule_id, slot)
        message = result.message
    except Exception as error:  # recorded; the next slot must still be scheduled
        log.exception("schedule %s slot %s failed", schedule_id, slot_iso)
        message = f"failed: {type(error).__name__}"
    current = get_current_job()
    if current is None:
        reschedule_job(schedule_id, slot_iso)
    else:
        launch_task(RESCHEDULE_JOB, schedule_id, slot_iso, depends_on=Dependency(jobs=[current], allow_failure=True),
                    description=f"schedule #{schedule_id}: next slot after {slot_iso}")
    return message


@ids_only("schedule {0}: next slot after {1}")
def reschedule_job(schedule_id: int, after_iso: str) -> None:
    schedule_next_slot(schedule_id, datetime.fromisoformat(after_iso))


@ids_only("agent run {0}")
def agent_run_job(agent_run_id: int) -> str | None:
    """A run of an agent for a legal entity (Run button, `flask agents run`); its outcome is on the run."""
    run = execute_agent_run(agent_run_id)
    return run.status if run is not None else None


@ids_only("{0} on event {1}")
def agent_event_job(agent_key: str, event_id: int) -> Any:
    """Run an agent for an event; agents tolerate seeing an event twice."""
    event = db.session.get(Event, event_id)
    if event is None:
        return None
    try:
        outcome = handler_for(agent_key)(event, get_agent(agent_key))
    except NotActedYet as waiting:
        return str(waiting)
    mark_handled(event_id, agent_key)
    return outcome
