"""Billing periods: when each period of a recurring contract starts and ends.

Period n of a contract starts at ``contract_start + n x frequency``, always
computed from the contract start (never by stepping from the previous period),
with month arithmetic clamped to the end of the month: monthly from 31 Jan 2024
gives 31 Jan, 29 Feb, 31 Mar, 30 Apr, ... A period ends (inclusively) the day
before the next one starts. Billing is in advance: a period is due once its
start date has been reached.

Pure functions over plain values: no clock, no database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count

FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly", "semiannual", "annual")

_DAY_STEPS: dict[str, int] = {"daily": 1, "weekly": 7}
_MONTH_STEPS: dict[str, int] = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}
# Days in each month of a common year; index 0 unused.
_DAYS_IN_MONTH: tuple[int, ...] = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """Billing period ``index`` (0-based), from ``start`` to ``end`` inclusive."""

    index: int
    start: date
    end: date


def _check_frequency(frequency: str) -> None:
    if frequency not in _DAY_STEPS and frequency not in _MONTH_STEPS:
        raise ValueError(
            f"unknown frequency {frequency!r}: use one of {', '.join(FREQUENCIES)}"
        )


def _check_date(name: str, value: object) -> None:
    # A datetime is a date subclass; letting one through would carry a time of
    # day into every period boundary, so refuse it like any other non-date.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime.date, not {type(value).__name__}")


def _check_index(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _starts(contract_start: date, frequency: str, first: int, last: int) -> list[date]:
    """Start dates of periods ``first`` to ``last`` inclusive (already validated)."""
    step = _DAY_STEPS.get(frequency)
    if step is not None:
        origin = contract_start.toordinal()
        fromordinal = date.fromordinal
        return [fromordinal(origin + n * step) for n in range(first, last + 1)]
    k = _MONTH_STEPS[frequency]
    base = contract_start.year * 12 + contract_start.month - 1
    day = contract_start.day
    out: list[date] = []
    append = out.append
    if day <= 28:  # every month has this day: no clamping needed
        for n in range(first, last + 1):
            y, m = divmod(base + n * k, 12)
            append(date(y, m + 1, day))
    else:
        for n in range(first, last + 1):
            y, m = divmod(base + n * k, 12)
            dim = _days_in_month(y, m + 1)
            append(date(y, m + 1, day if day <= dim else dim))
    return out


def _last_index_on_or_before(contract_start: date, frequency: str, limit: date) -> int:
    """Largest n with ``period_start(n) <= limit``; -1 when limit < contract_start.

    Computed arithmetically (days / step, or whole months / step with one
    downward correction for a clamped day), never by scanning periods.
    """
    if limit < contract_start:
        return -1
    step = _DAY_STEPS.get(frequency)
    if step is not None:
        return (limit - contract_start).days // step
    k = _MONTH_STEPS[frequency]
    months = (limit.year - contract_start.year) * 12 + (limit.month - contract_start.month)
    n = months // k
    # Period n starts in a month <= limit's month, and period n+1 in a later
    # month than limit's, so n is either right or one too high (same month as
    # limit but on a later day).
    if _starts(contract_start, frequency, n, n)[0] > limit:
        n -= 1
    return n


def period_start(contract_start: date, frequency: str, n: int) -> date:
    """First day of period ``n`` (0-based): contract_start + n x frequency, month-end clamped."""
    _check_date("contract_start", contract_start)
    _check_frequency(frequency)
    _check_index("n", n)
    return _starts(contract_start, frequency, n, n)[0]


def period(contract_start: date, frequency: str, n: int) -> Period:
    """Period ``n`` (0-based); it ends the day before period ``n + 1`` starts."""
    _check_date("contract_start", contract_start)
    _check_frequency(frequency)
    _check_index("n", n)
    start, following = _starts(contract_start, frequency, n, n + 1)
    return Period(n, start, following - _ONE_DAY)


def _periods(contract_start: date, frequency: str, first: int, last: int) -> list[Period]:
    if last < first:
        return []
    starts = _starts(contract_start, frequency, first, last + 1)
    one_day = _ONE_DAY
    return [
        Period(i, start, following - one_day)
        for i, start, following in zip(count(first), starts, starts[1:])
    ]


def due_periods(
    contract_start: date, frequency: str, as_of: date, end_date: date | None = None
) -> list[Period]:
    """Every period due by ``as_of`` (billing in advance), oldest first.

    A period is due when its start is on or before ``as_of`` and, if the
    contract has an ``end_date``, on or before ``end_date`` (a period that
    starts on the end date is billed in full). Empty when ``as_of`` is before
    the contract start. Cost is proportional to the number of periods returned.
    """
    _check_date("contract_start", contract_start)
    _check_frequency(frequency)
    _check_date("as_of", as_of)
    limit = as_of
    if end_date is not None:
        _check_date("end_date", end_date)
        limit = min(limit, end_date)
    last = _last_index_on_or_before(contract_start, frequency, limit)
    return _periods(contract_start, frequency, 0, last)


def due_period_count(
    contract_start: date, frequency: str, as_of: date, end_date: date | None = None
) -> int:
    """How many periods are due by ``as_of`` (the length of ``due_periods``), in constant time."""
    _check_date("contract_start", contract_start)
    _check_frequency(frequency)
    _check_date("as_of", as_of)
    limit = as_of if end_date is None else min(as_of, end_date)
    return _last_index_on_or_before(contract_start, frequency, limit) + 1


def periods_from(
    contract_start: date,
    frequency: str,
    first_index: int,
    count: int,
    end_date: date | None = None,
) -> list[Period]:
    """``count`` consecutive periods from ``first_index``, stopping before any that starts after ``end_date``."""
    _check_date("contract_start", contract_start)
    _check_frequency(frequency)
    _check_index("first_index", first_index)
    _check_index("count", count)
    last = first_index + count - 1
    if end_date is not None:
        _check_date("end_date", end_date)
        last = min(last, _last_index_on_or_before(contract_start, frequency, end_date))
    return _periods(contract_start, frequency, first_index, last)


def period_label(as_of: date) -> str:
    """The run's period label: year and month of ``as_of``, e.g. ``"2026-11"``."""
    _check_date("as_of", as_of)
    return f"{as_of.year:04d}-{as_of.month:02d}"
