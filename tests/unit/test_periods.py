"""Billing periods: examples and properties (pure, no app, no clock)."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.billing.periods import (
    FREQUENCIES,
    Period,
    due_periods,
    period,
    period_label,
    period_start,
    periods_from,
)

D = date
MONTHS_PER_STEP = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}
DAYS_PER_STEP = {"daily": 1, "weekly": 7}


def starts(contract_start: date, frequency: str, count: int) -> list[date]:
    return [period_start(contract_start, frequency, n) for n in range(count)]


# --- examples ---------------------------------------------------------------


def test_frequencies() -> None:
    assert FREQUENCIES == ("daily", "weekly", "monthly", "quarterly", "semiannual", "annual")


def test_monthly_from_31_january_leap_year() -> None:
    assert starts(D(2024, 1, 31), "monthly", 13) == [
        D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31), D(2024, 4, 30), D(2024, 5, 31),
        D(2024, 6, 30), D(2024, 7, 31), D(2024, 8, 31), D(2024, 9, 30), D(2024, 10, 31),
        D(2024, 11, 30), D(2024, 12, 31), D(2025, 1, 31),
    ]  # fmt: skip


def test_monthly_from_31_january_common_year() -> None:
    assert starts(D(2023, 1, 31), "monthly", 5) == [
        D(2023, 1, 31), D(2023, 2, 28), D(2023, 3, 31), D(2023, 4, 30), D(2023, 5, 31),
    ]  # fmt: skip


def test_monthly_periods_end_the_day_before_the_next_start() -> None:
    assert [period(D(2024, 1, 31), "monthly", n) for n in range(3)] == [
        Period(0, D(2024, 1, 31), D(2024, 2, 28)),
        Period(1, D(2024, 2, 29), D(2024, 3, 30)),
        Period(2, D(2024, 3, 31), D(2024, 4, 29)),
    ]


def test_annual_from_29_february() -> None:
    assert starts(D(2024, 2, 29), "annual", 5) == [
        D(2024, 2, 29), D(2025, 2, 28), D(2026, 2, 28), D(2027, 2, 28), D(2028, 2, 29),
    ]  # fmt: skip
    assert period(D(2024, 2, 29), "annual", 0) == Period(0, D(2024, 2, 29), D(2025, 2, 27))
    assert period(D(2024, 2, 29), "annual", 3) == Period(3, D(2027, 2, 28), D(2028, 2, 28))


def test_daily() -> None:
    assert starts(D(2024, 2, 28), "daily", 3) == [D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1)]
    assert period(D(2024, 2, 28), "daily", 1) == Period(1, D(2024, 2, 29), D(2024, 2, 29))


def test_weekly() -> None:
    assert starts(D(2024, 12, 30), "weekly", 3) == [D(2024, 12, 30), D(2025, 1, 6), D(2025, 1, 13)]
    assert period(D(2024, 12, 30), "weekly", 0) == Period(0, D(2024, 12, 30), D(2025, 1, 5))


def test_quarterly_from_30_november() -> None:
    assert starts(D(2023, 11, 30), "quarterly", 6) == [
        D(2023, 11, 30), D(2024, 2, 29), D(2024, 5, 30), D(2024, 8, 30), D(2024, 11, 30),
        D(2025, 2, 28),
    ]  # fmt: skip


def test_semiannual_from_31_august() -> None:
    assert starts(D(2023, 8, 31), "semiannual", 5) == [
        D(2023, 8, 31), D(2024, 2, 29), D(2024, 8, 31), D(2025, 2, 28), D(2025, 8, 31),
    ]  # fmt: skip


def test_unknown_frequency() -> None:
    with pytest.raises(ValueError) as excinfo:
        period_start(D(2024, 1, 1), "fortnightly", 0)
    assert str(excinfo.value) == (
        "unknown frequency 'fortnightly': use one of daily, weekly, monthly, quarterly, "
        "semiannual, annual"
    )
    with pytest.raises(ValueError, match="unknown frequency"):
        due_periods(D(2024, 1, 1), "Monthly", D(2024, 6, 1))


def test_negative_index_and_non_dates_are_refused() -> None:
    with pytest.raises(ValueError):
        period_start(D(2024, 1, 1), "monthly", -1)
    with pytest.raises(TypeError):
        period_start(datetime(2024, 1, 1, 12, 0), "monthly", 1)
    with pytest.raises(TypeError):
        due_periods(D(2024, 1, 1), "monthly", "2024-06-01")  # type: ignore[arg-type]


def test_due_periods_before_start_is_empty() -> None:
    assert due_periods(D(2024, 3, 15), "monthly", D(2024, 3, 14)) == []
    assert due_periods(D(2024, 3, 15), "daily", D(2020, 1, 1)) == []


def test_due_periods_as_of_on_a_period_start_includes_it() -> None:
    assert due_periods(D(2024, 3, 15), "monthly", D(2024, 3, 15)) == [
        Period(0, D(2024, 3, 15), D(2024, 4, 14))
    ]
    due = due_periods(D(2024, 1, 31), "monthly", D(2024, 2, 29))
    assert [p.start for p in due] == [D(2024, 1, 31), D(2024, 2, 29)]
    due = due_periods(D(2024, 1, 31), "monthly", D(2024, 2, 28))
    assert [p.start for p in due] == [D(2024, 1, 31)]


def test_due_periods_with_end_date() -> None:
    # The contract ends on 15 May: the period starting on 15 May is billed, nothing after.
    due = due_periods(D(2024, 1, 15), "monthly", D(2025, 1, 1), end_date=D(2024, 5, 15))
    assert [p.start for p in due] == [
        D(2024, 1, 15), D(2024, 2, 15), D(2024, 3, 15), D(2024, 4, 15), D(2024, 5, 15),
    ]  # fmt: skip
    due = due_periods(D(2024, 1, 15), "monthly", D(2025, 1, 1), end_date=D(2024, 5, 14))
    assert due[-1].start == D(2024, 4, 15)
    # as_of before end_date: as_of wins.
    due = due_periods(D(2024, 1, 15), "monthly", D(2024, 2, 20), end_date=D(2024, 5, 14))
    assert [p.index for p in due] == [0, 1]
    # end_date before the contract starts: nothing is due.
    assert due_periods(D(2024, 1, 15), "monthly", D(2025, 1, 1), end_date=D(2024, 1, 14)) == []


def test_due_periods_daily_over_ten_years() -> None:
    due = due_periods(D(2016, 1, 1), "daily", D(2025, 12, 31))
    assert len(due) == (D(2025, 12, 31) - D(2016, 1, 1)).days + 1
    assert due[-1] == Period(len(due) - 1, D(2025, 12, 31), D(2025, 12, 31))


def test_periods_from() -> None:
    got = periods_from(D(2024, 1, 31), "monthly", 2, 3)
    assert got == [period(D(2024, 1, 31), "monthly", n) for n in (2, 3, 4)]
    got = periods_from(D(2024, 1, 31), "monthly", 2, 3, end_date=D(2024, 4, 30))
    assert [p.start for p in got] == [D(2024, 3, 31), D(2024, 4, 30)]
    assert periods_from(D(2024, 1, 31), "monthly", 2, 0) == []
    assert periods_from(D(2024, 1, 31), "monthly", 2, 3, end_date=D(2024, 3, 30)) == []


def test_period_label() -> None:
    assert period_label(D(2026, 11, 30)) == "2026-11"
    assert period_label(D(2027, 1, 1)) == "2027-01"


# --- properties -------------------------------------------------------------

frequencies = st.sampled_from(FREQUENCIES)
plain_dates = st.dates(min_value=D(1990, 1, 1), max_value=D(2100, 12, 31))
# Month ends (28th-31st) are where clamping happens: draw them often.
month_ends = st.builds(
    lambda y, m, back: D(y, m, calendar.monthrange(y, m)[1] - back),
    st.integers(1990, 2100),
    st.integers(1, 12),
    st.integers(0, 3),
)
contract_starts = st.one_of(plain_dates, month_ends)


def expected_start(contract_start: date, frequency: str, n: int) -> date:
    """Independent reference: calendar-based month arithmetic."""
    if frequency in DAYS_PER_STEP:
        return contract_start + timedelta(days=n * DAYS_PER_STEP[frequency])
    y, m = divmod(contract_start.year * 12 + contract_start.month - 1 + n * MONTHS_PER_STEP[frequency], 12)
    last = calendar.monthrange(y, m + 1)[1]
    return D(y, m + 1, min(contract_start.day, last))


@settings(max_examples=200, deadline=None)
@given(contract_starts, frequencies, st.integers(0, 300))
def test_period_start_matches_reference(contract_start: date, frequency: str, n: int) -> None:
    got = period_start(contract_start, frequency, n)
    assert got == expected_start(contract_start, frequency, n)
    assert got >= contract_start
    if frequency in MONTHS_PER_STEP:
        k = MONTHS_PER_STEP[frequency]
        months = contract_start.month - 1 + n * k
        assert (got.year, got.month) == (contract_start.year + months // 12, months % 12 + 1)
        assert got.day == min(contract_start.day, calendar.monthrange(got.year, got.month)[1])


@settings(max_examples=200, deadline=None)
@given(contract_starts, frequencies, st.integers(0, 300))
def test_periods_are_contiguous_and_increasing(contract_start: date, frequency: str, n: int) -> None:
    this, following = period(contract_start, frequency, n), period(contract_start, frequency, n + 1)
    assert this.index == n and following.index == n + 1
    assert this.start == period_start(contract_start, frequency, n)
    assert this.start <= this.end < following.start  # non-overlapping, non-empty
    assert this.end + timedelta(days=1) == following.start  # contiguous
    assert this.start < following.start  # strictly increasing
    if n == 0:
        assert this.start == contract_start


@settings(max_examples=50, deadline=None)
@given(contract_starts, frequencies)
def test_a_run_of_periods_tiles_time(contract_start: date, frequency: str) -> None:
    run = periods_from(contract_start, frequency, 0, 60)
    assert [p.index for p in run] == list(range(60))
    assert run[0].start == contract_start
    for before, after in zip(run, run[1:]):
        assert before.end + timedelta(days=1) == after.start


# How far past the contract start as_of / end_date may fall, per frequency:
# modest for daily so the brute force stays cheap.
SPAN_DAYS = {"daily": 800, "weekly": 3000, "monthly": 5000, "quarterly": 8000,
             "semiannual": 8000, "annual": 12000}  # fmt: skip


def brute_force_due(contract_start: date, frequency: str, as_of: date, end_date: date | None) -> list[Period]:
    out: list[Period] = []
    n = 0
    while True:
        p = period(contract_start, frequency, n)
        if p.start > as_of or (end_date is not None and p.start > end_date):
            return out
        out.append(p)
        n += 1


@st.composite
def due_cases(draw: st.DrawFn) -> tuple[date, str, date, date | None]:
    frequency = draw(frequencies)
    contract_start = draw(contract_starts)
    span = SPAN_DAYS[frequency]
    as_of = contract_start + timedelta(days=draw(st.integers(-60, span)))
    end_date = draw(
        st.none() | st.integers(-60, span).map(lambda d: contract_start + timedelta(days=d))
    )
    return contract_start, frequency, as_of, end_date


@settings(max_examples=200, deadline=None)
@given(due_cases())
def test_due_periods_equals_brute_force(case: tuple[date, str, date, date | None]) -> None:
    contract_start, frequency, as_of, end_date = case
    got = due_periods(contract_start, frequency, as_of, end_date)
    assert got == brute_force_due(contract_start, frequency, as_of, end_date)
    for p in got:
        assert p.start <= as_of
        assert end_date is None or p.start <= end_date


@settings(max_examples=200, deadline=None)
@given(due_cases(), st.integers(0, 40), st.integers(0, 40))
def test_periods_from_equals_reference(
    case: tuple[date, str, date, date | None], first: int, count: int
) -> None:
    contract_start, frequency, _, end_date = case
    expected = [period(contract_start, frequency, n) for n in range(first, first + count)]
    if end_date is not None:
        expected = [p for p in expected if p.start <= end_date]
    assert periods_from(contract_start, frequency, first, count, end_date) == expected


@settings(max_examples=100, deadline=None)
@given(st.dates(min_value=D(1990, 1, 1), max_value=D(2100, 12, 31)))
def test_period_label_is_year_month(as_of: date) -> None:
    assert period_label(as_of) == as_of.strftime("%Y-%m")
