"""The schedule form: request values in, a Preset out. Parsing only; the rules live in app.schedules.cron."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from app.errors import ScheduleError
from app.locale_input import LocaleInputError, parse_time_text
from app.models import ScheduledJob
from app.records.validation import FieldError, check_date_range
from app.schedules.cron import PRESETS, WEEKDAYS, Preset
from app.schedules.service import preset_of

PRESET_CHOICES = (
    ("daily", "Daily at a time"),
    ("weekly", "Weekly on chosen weekdays"),
    ("monthly", "Monthly on day N (1-28)"),
    ("first_business_day", "First business day of the month at a time"),
    ("cron", "Raw cron expression"),
)
WEEKDAY_CHOICES = tuple((number, name[:3]) for number, name in enumerate(WEEKDAYS))  # 0 = Mon


def default_values(agent_key: str = "") -> dict[str, Any]:
    """A new schedule starts as the walkthrough's: weekly on Monday at 06:00."""
    return {"agent_key": agent_key, "name": "", "kind": "weekly", "time": "06:00", "weekdays": [0],
            "day_of_month": "1", "cron": ""}


def schedule_values(schedule: ScheduledJob) -> dict[str, Any]:
    preset = preset_of(schedule)
    return {"agent_key": schedule.agent.key, "name": schedule.name, "kind": preset.kind, "time": preset.time,
            "weekdays": list(preset.weekdays), "day_of_month": str(preset.day_of_month),
            "cron": preset.cron if preset.kind == "cron" else ""}


def form_values(form: Mapping) -> dict[str, Any]:
    """What the person entered, kept as entered so the form can show it again."""
    weekdays = []
    for raw in form.getlist("weekdays"):
        try:
            number = int(raw)
        except ValueError:
            continue
        if 0 <= number <= 6 and number not in weekdays:
            weekdays.append(number)
    return {"agent_key": form.get("agent_key", "").strip(), "name": form.get("name", "").strip(),
            "kind": form.get("kind", "").strip(), "time": time_of_day(form.get("time", "")),
            "weekdays": sorted(weekdays), "day_of_month": form.get("day_of_month", "").strip(),
            "cron": form.get("cron", "").strip()}


def time_of_day(text: str) -> str:
    """The time as HH:MM on a 24-hour clock ("6:00 PM" → "18:00"); kept as typed when it is no time, so the
    schedule rules say what is wrong with it."""
    try:
        return parse_time_text(text).strftime("%H:%M")
    except LocaleInputError:
        return text.strip()


def to_preset(values: Mapping[str, Any]) -> Preset:
    """The Preset the values describe; ScheduleError when a field cannot be read at all."""
    if values.get("kind") not in PRESETS:
        raise ScheduleError("choose how often the schedule fires (daily, weekly, monthly, first business day "
                            "or a cron expression)")
    day_text = values.get("day_of_month") or "1"
    try:
        day = int(day_text)
    except ValueError:
        if values.get("kind") == "monthly":
            raise ScheduleError(f"day of month {day_text!r} is not a whole number (use 1-28)") from None
        day = 1
    return Preset(values.get("kind", ""), values.get("time") or "", tuple(values.get("weekdays") or ()), day,
                  values.get("cron") or "")


def parse_start(text: str, tz) -> datetime | None:
    """The preview's optional start: ISO 8601, naive meaning in the entity's time zone."""
    if not text:
        return None
    try:
        start = datetime.fromisoformat(text)
        check_date_range(start.date())
    except FieldError as error:
        raise ScheduleError(f"start: {error}") from None
    except ValueError:
        raise ScheduleError(f"start {text!r} is not an ISO 8601 date-time (e.g. 2026-03-28T00:00)") from None
    return start if start.tzinfo else start.replace(tzinfo=tz)
