"""Putting the schedules into rq-scheduler, idempotently.

Each enabled schedule has exactly one rq-scheduler job, id `schedule-<id>`, due at its next slot
and carrying that slot; when it fires, the fire job schedules the following slot. Changed
schedules are replaced, disabled and deleted ones cancelled. The system's own periodic jobs are
data (SYSTEM_JOBS) registered with stable ids. The sync runs when the scheduler process starts,
after every change, and every minute as a system job, so a lost fire job heals itself.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from redis import Redis
from rq.job import Job
from rq_scheduler import Scheduler

from app.extensions import db
from app.models import ScheduledJob
from app.models.types import utcnow
from app.queues import FIRE_SCHEDULE_JOB, JOBS, get_redis, schedule_task
from app.schedules.service import list_schedules, upcoming

log = logging.getLogger(__name__)

PREFIX = "schedule-"
HEARTBEAT_KEY = "arbill:scheduler:heartbeat"
# Set by every sync: when it is missing, Redis lost the schedules (restarted empty, or flushed).
SYNCED_KEY = "arbill:scheduler:synced"


@dataclass(frozen=True)
class SystemJob:
    id: str
    cron: str  # UTC
    func: str  # a job declared in app/queues.py JOBS, which says its queue
    description: str = ""

    @property
    def queue(self) -> str:
        return JOBS[self.func].queue


SYSTEM_JOBS = (
    SystemJob("system-outbox-relay", "* * * * *", "app.agents.jobs.relay_job",
              description="dispatch the event outbox"),
    SystemJob("system-stale-run-sweep", "*/5 * * * *", "app.agents.jobs.sweep_job",
              description="look after billing runs, report deliveries that lost their job"),
    SystemJob("system-schedule-sync", "* * * * *", "app.agents.jobs.schedule_sync_job",
              description="keep rq-scheduler in step with the schedules"),
    SystemJob("system-collection-retries", "15 * * * *", "app.agents.jobs.collection_retries_job",
              description="present SEPA retries whose day has come"),
)


@dataclass
class SyncResult:
    added: int = 0
    replaced: int = 0
    kept: int = 0
    cancelled: int = 0


def scheduler(connection: Redis | None = None, interval: int = 10) -> Scheduler:
    return Scheduler(queue_name="default", connection=connection or get_redis(), interval=interval)


def _scheduled(sched: Scheduler) -> dict[str, tuple[Job, datetime]]:
    return {job.id: (job, when) for job, when in sched.get_jobs(with_times=True)}


def sync_schedules(connection: Redis | None = None, now: datetime | None = None) -> SyncResult:
    """Make rq-scheduler hold one job per enabled schedule (at its next slot) and the system jobs."""
    sched = scheduler(connection)
    now = now or utcnow()
    existing = _scheduled(sched)
    result = SyncResult()
    wanted: set[str] = set()
    for schedule in list_schedules():
        if not schedule.enabled:
            continue
        job_id = f"{PREFIX}{schedule.id}"
        wanted.add(job_id)
        slot = upcoming(schedule, 1, after=now)[0].astimezone(timezone.utc)
        args = (schedule.id, slot.isoformat())
        current = existing.get(job_id)
        if current is None and _in_flight(job_id, sched.connection):
            result.kept += 1  # firing right now: its follow-up job schedules the next slot
            continue
        if current is not None:
            job, when = current
            if tuple(job.args) == args and _same_instant(when, slot):
                result.kept += 1
                continue
            sched.cancel(job)
            job.delete()
            result.replaced += 1
        else:
            result.added += 1
        schedule_task(sched, slot, FIRE_SCHEDULE_JOB, *args, job_id=job_id,
                      description=f"schedule #{schedule.id} at {slot.isoformat()}")  # ids only: RQ shows it
    for job_id, (job, _when) in existing.items():
        if job_id.startswith(PREFIX) and job_id not in wanted:
            sched.cancel(job)
            job.delete()
            result.cancelled += 1
    _sync_system_jobs(sched, existing)
    sched.connection.set(SYNCED_KEY, now.isoformat())
    return result


def schedule_next_slot(schedule_id: int, after: datetime) -> None:
    """After a fire: put the schedule's following slot into rq-scheduler (same stable job id)."""
    schedule = db.session.get(ScheduledJob, schedule_id)
    if schedule is None or not schedule.enabled:
        return
    sched = scheduler()
    if _in_flight(f"{PREFIX}{schedule.id}", sched.connection):
        return
    slot = upcoming(schedule, 1, after=max(after, utcnow()))[0].astimezone(timezone.utc)
    job_id = f"{PREFIX}{schedule.id}"
    if job_id in sched:
        sched.cancel(job_id)
    schedule_task(sched, slot, FIRE_SCHEDULE_JOB, schedule.id, slot.isoformat(), job_id=job_id,
                  description=f"schedule #{schedule.id} at {slot.isoformat()}")  # ids only: RQ shows it


def _sync_system_jobs(sched: Scheduler, existing: dict[str, tuple[Job, datetime]]) -> None:
    wanted = {job.id for job in SYSTEM_JOBS}
    for spec in SYSTEM_JOBS:
        current = existing.get(spec.id)
        if current is not None:
            job, _ = current
            if job.meta.get("cron_string") == spec.cron and job.func_name == spec.func:
                continue
            sched.cancel(job)
            job.delete()
        # rq-scheduler's cron() adds a duplicate unless given an id: the id is the definition's.
        sched.cron(spec.cron, spec.func, id=spec.id, queue_name=spec.queue, description=spec.description,
                   use_local_timezone=False)
    for job_id, (job, _) in existing.items():
        if job_id.startswith("system-") and job_id not in wanted:
            sched.cancel(job)
            job.delete()


def _in_flight(job_id: str, connection: Redis) -> bool:
    """The schedule's job was moved to a queue and is waiting or running: do not overwrite it."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except Exception:  # noqa: BLE001 - no such job
        return False
    return job.get_status(refresh=False) in ("queued", "started", "deferred")


def _same_instant(when: datetime, slot: datetime) -> bool:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return abs((when - slot).total_seconds()) < 1


def sync_after_change() -> str | None:
    """Sync after a schedule changed; if Redis is down, say so (the scheduler syncs when it can)."""
    try:
        sync_schedules()
        return None
    except Exception as error:  # noqa: BLE001
        log.warning("schedule sync failed: %s", error)
        return ("the change is saved, but the scheduler could not be updated now (Redis unreachable); "
                "it catches up within a minute of Redis being back")


def scheduler_alive(connection: Redis | None = None) -> bool:
    return bool((connection or get_redis()).exists(HEARTBEAT_KEY))
