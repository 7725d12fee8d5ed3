"""What the schedule pages show besides the models: rows of the list, recent fires, times in a zone."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import BillingRun, ScheduledJob, ScheduleFire
from app.schedules.cron import zone
from app.schedules.service import last_fire, missed_slots, upcoming, when_in_words

RECENT_FIRES = 20


@dataclass
class ScheduleView:
    schedule: ScheduledJob
    when: str
    next_fires: list[datetime]
    last_fire: ScheduleFire | None
    last_run: BillingRun | None
    missed: list[datetime] = field(default_factory=list)

    @property
    def tz(self) -> str:
        return self.schedule.legal_entity.timezone


def schedule_view(schedule: ScheduledJob, count: int = 1) -> ScheduleView:
    fire = last_fire(schedule)
    run = db.session.get(BillingRun, fire.billing_run_id) if fire and fire.billing_run_id else None
    return ScheduleView(schedule, when_in_words(schedule), upcoming(schedule, count) if schedule.enabled else [],
                        fire, run, missed_slots(schedule))


def recent_fires(schedule: ScheduledJob, limit: int = RECENT_FIRES) -> list[tuple[ScheduleFire, BillingRun | None]]:
    """The schedule's latest fires, newest slot first, each with the run it started (if any)."""
    query = (select(ScheduleFire, BillingRun)
             .outerjoin(BillingRun, BillingRun.id == ScheduleFire.billing_run_id)
             .where(ScheduleFire.scheduled_job_id == schedule.id)
             .order_by(ScheduleFire.slot.desc()).limit(limit))
    return [(fire, run) for fire, run in db.session.execute(query)]


def in_zone(value: datetime | None, tz_name: str, weekday: bool = True) -> str:
    """'Mon 2026-03-30 06:00 +02:00': local wall time with its UTC offset."""
    if value is None:
        return ""
    local = value.astimezone(zone(tz_name))
    offset = local.strftime("%z")
    text = local.strftime("%a %Y-%m-%d %H:%M" if weekday else "%Y-%m-%d %H:%M")
    return f"{text} {offset[:3]}:{offset[3:]}"


def schedule_helpers() -> dict[str, Any]:
    """Context for the schedule templates (registered as the blueprint's context processor)."""
    return {"in_zone": in_zone}
