"""The collection date of a SEPA debit: never before the pre-notified date, always a TARGET2 business day."""
from datetime import date, timedelta

import pytest
from hypothesis import given, strategies as st

from app.payments.target2 import collection_date, is_business_day, next_business_day


@pytest.mark.parametrize("day", [date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1),
                                 date(2026, 12, 25), date(2026, 12, 26), date(2027, 3, 26), date(2027, 3, 29),
                                 date(2026, 12, 6), date(2026, 12, 5)])
def test_target2_closing_days(day):
    assert not is_business_day(day)


@pytest.mark.parametrize("day", [date(2026, 12, 7), date(2026, 12, 24), date(2026, 12, 31), date(2027, 3, 25),
                                 date(2026, 5, 14), date(2025, 10, 3)])  # Ascension, German Unity: TARGET2 is open
def test_target2_open_days(day):
    assert is_business_day(day)


def test_the_issue_case_sunday_and_before_the_pre_notified_date():
    # closed Friday 4 Dec 2026 + 2 lead days = Sunday 6 Dec, but the invoice said "on or after 2026-12-18"
    assert collection_date(date(2026, 12, 18), date(2026, 12, 4), 2) == date(2026, 12, 18)
    # nothing pre-notified later: Sunday moves to Monday
    assert collection_date(date(2026, 12, 1), date(2026, 12, 4), 2) == date(2026, 12, 7)


def test_easter_and_christmas_move_to_the_next_open_day():
    # closing + lead lands on Good Friday 2027: Sat, Sun, Easter Monday are closed too
    assert collection_date(date(2027, 3, 1), date(2027, 3, 24), 2) == date(2027, 3, 30)
    # pre-notified for Easter Monday itself
    assert collection_date(date(2027, 3, 29), date(2027, 3, 20), 2) == date(2027, 3, 30)
    assert collection_date(date(2026, 12, 25), date(2026, 12, 1), 2) == date(2026, 12, 28)
    assert next_business_day(date(2026, 12, 31)) == date(2026, 12, 31)
    assert next_business_day(date(2027, 1, 1)) == date(2027, 1, 4)


@given(st.dates(date(2025, 1, 1), date(2035, 12, 31)), st.dates(date(2025, 1, 1), date(2035, 12, 31)),
       st.integers(0, 30))
def test_never_before_either_date_always_open_and_the_first_such_day(pre_notified, closing, lead):
    result = collection_date(pre_notified, closing, lead)
    earliest = max(pre_notified, closing + timedelta(days=lead))
    assert result >= earliest and is_business_day(result)
    assert all(not is_business_day(earliest + timedelta(days=n)) for n in range((result - earliest).days))
    assert (result - earliest).days <= 4  # at most Good Friday to Easter Monday + a weekend side
