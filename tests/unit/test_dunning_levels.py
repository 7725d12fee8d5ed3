"""Reminder levels, fees and statutory interest (app/dunning/levels.py): pure functions."""
from datetime import date
from decimal import Decimal

import pytest

from app.dunning.levels import (days_past_due, fee_for, next_level, notice_totals, parse_level_days,
                                parse_level_fees, statutory_interest)
from app.dunning.texts import check_template, language_of, level_title

LEVELS = (7, 21, 35)


def test_days_past_due_counts_calendar_days_after_the_due_date():
    assert days_past_due(date(2026, 1, 15), date(2026, 1, 22)) == 7
    assert days_past_due(date(2026, 2, 20), date(2026, 3, 1)) == 9  # across February
    assert days_past_due(date(2026, 1, 15), date(2026, 1, 15)) == 0


@pytest.mark.parametrize("overdue, last, since, expected", [
    (6, 0, None, None),  # not yet
    (7, 0, None, 1),  # level 1 on its day
    (60, 0, None, 1),  # never reminded: level 1 first, however late
    (21, 1, 14, 2),  # level 2 on its day, 14 days after level 1
    (30, 1, 13, None),  # level 2's days are reached, but level 1 went out 13 days ago (gap 14)
    (34, 2, 14, None),  # level 3 not before 35 days
    (35, 2, 14, 3),
    (90, 3, 55, None),  # no level after the last
    (20, 1, 30, None),  # level 2 waits for its days past due
])
def test_next_level(overdue, last, since, expected):
    assert next_level(overdue, LEVELS, last, since) == expected


def test_statutory_interest_is_amount_times_rate_times_days_over_365_rounded_half_up():
    # 1000.00 × 9.12 % × 30 / 365 = 7.49589… → 7.50
    assert statutory_interest(Decimal("1000.00"), Decimal("9.12"), 30) == Decimal("7.50")
    # 58.53 × 12.27 % × 10 / 365 = 0.196755… → 0.20
    assert statutory_interest(Decimal("58.53"), Decimal("12.27"), 10) == Decimal("0.20")
    # exactly half a cent rounds up: 365.00 × 0.5 % × 1 / 365 = 0.005 → 0.01
    assert statutory_interest(Decimal("365.00"), Decimal("0.5"), 1) == Decimal("0.01")
    assert statutory_interest(Decimal("1000.00"), None, 30) == Decimal("0.00")
    assert statutory_interest(Decimal("1000.00"), Decimal("9"), 0) == Decimal("0.00")
    assert statutory_interest(Decimal("1000"), Decimal("9.12"), 30, "JPY") == Decimal("7")


def test_level_days_and_fees_are_checked():
    assert parse_level_days("7, 21,35") == (7, 21, 35)
    for bad in ("", "7,7", "21,7", "0,7", "x"):
        with pytest.raises(ValueError):
            parse_level_days(bad)
    assert parse_level_fees("0,5.00,10.00") == (Decimal("0"), Decimal("5.00"), Decimal("10.00"))
    assert parse_level_fees("") == ()
    for bad in ("-1", "5,00x", "1.005", "NaN"):
        with pytest.raises(ValueError):
            parse_level_fees(bad)
    fees = parse_level_fees("0,5.00")
    assert [fee_for(level, fees) for level in (1, 2, 3)] == [Decimal("0"), Decimal("5.00"), Decimal("0")]


def test_a_notice_adds_open_amounts_fee_and_interest_to_the_cent():
    totals = notice_totals([Decimal("58.53"), Decimal("41.47")], [Decimal("0.20"), Decimal("0.10")],
                           Decimal("5"), "EUR")
    assert (totals.open_amount, totals.fee, totals.interest, totals.total) == (
        Decimal("100.00"), Decimal("5.00"), Decimal("0.30"), Decimal("105.30"))


def test_texts_by_language_and_level():
    assert language_of("de_DE") == language_of("de_AT") == "de"
    assert language_of("fr_FR") == language_of(None) == "en"
    assert level_title("Zahlungserinnerung|1. Mahnung|2. Mahnung", 2) == "1. Mahnung"
    assert level_title("A|B", 4) == "B"
    check_template("Dear {customer_name}: {total}")
    with pytest.raises(ValueError, match="unknown placeholder"):
        check_template("{number}")
    with pytest.raises(ValueError, match="stray brace"):
        check_template("{total")
