"""TARGET2 business days (the ECB's calendar, from the `holidays` package): plain functions, no clock."""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _closing_days(year: int) -> frozenset[date]:
    # 1 Jan, Good Friday, Easter Monday, 1 May, 25 and 26 Dec; weekends are handled below.
    return frozenset(holidays.financial_holidays("ECB", years=year))


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _closing_days(day.year)


def next_business_day(day: date) -> date:
    """The day itself when TARGET2 is open, else the next day it is."""
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def collection_date(pre_notified: date, closing_day: date, lead_days: int) -> date:
    """The later of the date the debtor was told ("debited on or after") and closing day + lead days,
    moved to the next TARGET2 business day: never before the pre-notified date, never on a closed day."""
    return next_business_day(max(pre_notified, closing_day + timedelta(days=lead_days)))
