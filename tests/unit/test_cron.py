"""Cron in a time zone: presets, words, next fires across daylight-saving changes."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from app.schedules.cron import (Preset, ScheduleError, describe, is_first_business_day, next_fires, preset_to_cron,
                                slots_between)

BERLIN = ZoneInfo("Europe/Berlin")


def local(fires):
    return [f.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %z") for f in fires]


def test_daily_0600_berlin_stays_at_0600_across_spring_forward():
    fires = next_fires("0 6 * * *", "Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=timezone.utc), 4)
    assert local(fires) == ["2026-03-28 06:00 +0100", "2026-03-29 06:00 +0200", "2026-03-30 06:00 +0200",
                            "2026-03-31 06:00 +0200"]
    # In UTC the fire moves by an hour: that is the point.
    assert [f.astimezone(timezone.utc).hour for f in fires] == [5, 4, 4, 4]


def test_daily_0600_berlin_stays_at_0600_across_fall_back():
    fires = next_fires("0 6 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=timezone.utc), 3)
    assert local(fires) == ["2026-10-25 06:00 +0100", "2026-10-26 06:00 +0100", "2026-10-27 06:00 +0100"]


def test_a_time_in_the_autumn_fold_fires_once():
    fires = next_fires("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=timezone.utc), 3)
    assert local(fires) == ["2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100", "2026-10-27 02:30 +0100"]


def test_a_time_in_the_spring_gap_fires_after_it():
    fires = next_fires("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=timezone.utc), 2)
    assert local(fires) == ["2026-03-29 03:30 +0200", "2026-03-30 02:30 +0200"]


def test_next_fires_are_strictly_after_start():
    start = datetime(2026, 11, 30, 6, 0, tzinfo=BERLIN)  # a Monday, exactly on a slot
    assert local(next_fires("0 6 * * 1", "Europe/Berlin", start, 2)) == ["2026-12-07 06:00 +0100", "2026-12-14 06:00 +0100"]


@pytest.mark.parametrize("preset, cron, words", [
    (Preset("daily", "07:30"), "30 7 * * *", "Every day at 07:30 Europe/Berlin"),
    (Preset("weekly", "06:00", (0,)), "0 6 * * 1", "Every Monday at 06:00 Europe/Berlin"),
    (Preset("weekly", "06:00", (4, 0, 2)), "0 6 * * 1,3,5", "Every Monday, Wednesday and Friday at 06:00 Europe/Berlin"),
    (Preset("weekly", "06:00", (0, 1, 2, 3, 4)), "0 6 * * 1,2,3,4,5", "Every weekday at 06:00 Europe/Berlin"),
    (Preset("weekly", "09:15", (6,)), "15 9 * * 0", "Every Sunday at 09:15 Europe/Berlin"),
    (Preset("monthly", "06:00", day_of_month=15), "0 6 15 * *", "Monthly on day 15 at 06:00 Europe/Berlin"),
    (Preset("cron", cron="*/15  8-17 * * 1-5"), "*/15 8-17 * * 1-5", "cron */15 8-17 * * 1-5 (Europe/Berlin)"),
])
def test_presets_to_cron_and_words(preset, cron, words):
    expression, first_business_day = preset_to_cron(preset)
    assert (expression, first_business_day) == (cron, False)
    assert describe(expression, "Europe/Berlin") == words


def test_first_business_day_of_the_month():
    expression, first = preset_to_cron(Preset("first_business_day", "06:00"))
    assert first and describe(expression, "Europe/Berlin", True) == "First business day of the month at 06:00 Europe/Berlin"
    fires = next_fires(expression, "Europe/Berlin", datetime(2026, 1, 15, tzinfo=timezone.utc), 4, first_business_day=True)
    # Feb 2026 starts on a Sunday, Mar on a Sunday, Apr on a Wednesday, May on a Friday.
    assert [f.date() for f in fires] == [date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 1), date(2026, 5, 1)]
    assert is_first_business_day(date(2026, 8, 3)) and not is_first_business_day(date(2026, 8, 4))


@pytest.mark.parametrize("preset, message", [
    (Preset("weekly", "06:00", ()), "choose at least one weekday"),
    (Preset("daily", "25:00"), "is not a time of day"),
    (Preset("daily", "six"), "is not a time of day"),
    (Preset("monthly", "06:00", day_of_month=31), "day of month must be 1-28"),
    (Preset("cron", cron="0 6 * *"), "needs 5 fields"),
    (Preset("cron", cron="61 6 * * *"), "is not a valid cron expression"),
    (Preset("hourly"), "unknown preset"),
])
def test_bad_presets_say_what_is_wrong(preset, message):
    with pytest.raises(ScheduleError, match=message):
        preset_to_cron(preset)


def test_unknown_time_zone():
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Base'"):
        next_fires("0 6 * * *", "Mars/Base", datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_slots_between():
    slots = slots_between("0 6 * * *", "Europe/Berlin", datetime(2026, 11, 20, 12, tzinfo=timezone.utc),
                          datetime(2026, 11, 23, 12, tzinfo=timezone.utc))
    assert local(slots) == ["2026-11-21 06:00 +0100", "2026-11-22 06:00 +0100", "2026-11-23 06:00 +0100"]
