"""Cron expressions read in a time zone, presets in words, and next fire times. Pure: no clock.

Fire times are computed on the local wall clock and then placed in the zone, so "every day at
06:00 Europe/Berlin" is 06:00 local on both sides of a daylight-saving change. A local time that
does not exist (the spring gap) fires shifted by the gap (02:30 → 03:30); one that occurs twice
(the autumn fold) fires once, the first time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter

from app.errors import ScheduleError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CRON_WEEKDAY = {0: "1", 1: "2", 2: "3", 3: "4", 4: "5", 5: "6", 6: "0"}  # Python weekday → cron
PRESETS = ("daily", "weekly", "monthly", "first_business_day", "cron")
FIRST_BUSINESS_DAY_CRON = "{m} {h} 1-3 * 1-5"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None


def validate_cron(expression: str) -> str:
    text = " ".join((expression or "").split())
    if len(text.split(" ")) != 5:
        raise ScheduleError(f"{expression!r} is not a cron expression: it needs 5 fields "
                            "(minute hour day-of-month month day-of-week), e.g. '0 6 * * 1'")
    try:
        croniter(text)
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ScheduleError(f"{expression!r} is not a valid cron expression: {error}") from None
    return text


def is_first_business_day(day: date) -> bool:
    """Monday-Friday, and no earlier weekday in the month."""
    return day.weekday() < 5 and all((day - timedelta(days=d)).weekday() >= 5 for d in range(1, day.day))


def next_fires(expression: str, tz_name: str, after: datetime, count: int = 5,
               first_business_day: bool = False) -> list[datetime]:
    """The next `count` fire times strictly after `after` (aware), as aware datetimes in the zone."""
    if after.tzinfo is None:
        raise ValueError("`after` must be timezone-aware")
    tz = zone(tz_name)
    text = validate_cron(expression)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    iterator = croniter(text, local_after)
    fires: list[datetime] = []
    seen: set[datetime] = set()
    guard = 0
    while len(fires) < count and guard < 10000:
        guard += 1
        wall = iterator.get_next(datetime)
        if first_business_day and not is_first_business_day(wall.date()):
            continue
        instant = _place(wall, tz)
        if instant <= after or instant in seen:
            continue
        seen.add(instant)
        fires.append(instant)
    return fires


def slots_between(expression: str, tz_name: str, start: datetime, end: datetime,
                  first_business_day: bool = False, limit: int = 100) -> list[datetime]:
    """Fire times after `start` up to and including `end` (at most `limit`)."""
    slots = []
    cursor = start
    while len(slots) < limit:
        batch = next_fires(expression, tz_name, cursor, 20, first_business_day)
        for fire in batch:
            if fire > end or len(slots) >= limit:
                return slots
            slots.append(fire)
        if not batch:
            break
        cursor = batch[-1]
    return slots


def _place(wall: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time in the zone: the first of two in the fold, moved past a gap."""
    placed = wall.replace(tzinfo=tz, fold=0)
    # Round-trip through UTC normalises a time in the spring gap to the real instant after it.
    return placed.astimezone(timezone.utc).astimezone(tz)


# ------------------------------------------------------------------ presets
@dataclass(frozen=True)
class Preset:
    kind: str  # daily | weekly | monthly | first_business_day | cron
    time: str = "06:00"  # HH:MM
    weekdays: tuple[int, ...] = ()  # 0 = Monday
    day_of_month: int = 1
    cron: str = ""


def _hm(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(p) for p in text.split(":"))
    except ValueError:
        raise ScheduleError(f"{text!r} is not a time of day (use HH:MM, e.g. 06:00)") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ScheduleError(f"{text!r} is not a time of day (use HH:MM, e.g. 06:00)")
    return hour, minute


def preset_to_cron(preset: Preset) -> tuple[str, bool]:
    """(cron expression, first-business-day filter) for a preset."""
    if preset.kind == "cron":
        return validate_cron(preset.cron), False
    hour, minute = _hm(preset.time)
    if preset.kind == "daily":
        return f"{minute} {hour} * * *", False
    if preset.kind == "weekly":
        if not preset.weekdays:
            raise ScheduleError("choose at least one weekday")
        days = ",".join(CRON_WEEKDAY[d] for d in sorted(set(preset.weekdays)))
        return f"{minute} {hour} * * {days}", False
    if preset.kind == "monthly":
        if not 1 <= preset.day_of_month <= 28:
            raise ScheduleError("day of month must be 1-28 (every month has it)")
        return f"{minute} {hour} {preset.day_of_month} * *", False
    if preset.kind == "first_business_day":
        return FIRST_BUSINESS_DAY_CRON.format(m=minute, h=hour), True
    raise ScheduleError(f"unknown preset {preset.kind!r}: use one of {', '.join(PRESETS)}")


def describe(expression: str, tz_name: str, first_business_day: bool = False) -> str:
    """In words: "Every Monday at 06:00 Europe/Berlin"; raw cron when no simpler words fit."""
    fields = expression.split()
    if len(fields) != 5:
        return f"cron {expression} ({tz_name})"
    minute, hour, dom, month, dow = fields
    if minute.isdigit() and hour.isdigit():
        at = f"at {int(hour):02d}:{int(minute):02d} {tz_name}"
        if first_business_day:
            return f"First business day of the month {at}"
        if dom == "*" and month == "*" and dow == "*":
            return f"Every day {at}"
        if dom == "*" and month == "*" and dow in ("1-5", "MON-FRI", "mon-fri"):
            return f"Every weekday {at}"
        if dom == "*" and month == "*" and _is_day_list(dow):
            names = [_weekday_name(d) for d in dow.split(",")]
            if names == list(WEEKDAYS[:5]):
                return f"Every weekday {at}"
            return f"Every {_join(names)} {at}"
        if dom.isdigit() and month == "*" and dow == "*":
            return f"Monthly on day {int(dom)} {at}"
    return f"cron {expression} ({tz_name})"


def _is_day_list(dow: str) -> bool:
    return all(part.isdigit() and 0 <= int(part) <= 7 for part in dow.split(","))


def _weekday_name(cron_day: str) -> str:
    number = int(cron_day) % 7  # 0 and 7 are Sunday
    return WEEKDAYS[(number - 1) % 7]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
