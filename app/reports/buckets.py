"""The AR aging buckets: days past due (as-of date − due date) in ranges, pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Bucket:
    """Days past due (as_of − due_date) from `min_days` to `max_days`, both inclusive; None is open-ended."""

    key: str
    label: str
    min_days: int | None
    max_days: int | None

    def contains(self, days_past_due: int) -> bool:
        return ((self.min_days is None or days_past_due >= self.min_days)
                and (self.max_days is None or days_past_due <= self.max_days))

    def due_date_range(self, as_of: date) -> tuple[date | None, date | None]:
        """The due dates (earliest, latest; inclusive, None = unbounded) of this bucket as of `as_of`."""
        earliest = as_of - timedelta(days=self.max_days) if self.max_days is not None else None
        latest = as_of - timedelta(days=self.min_days) if self.min_days is not None else None
        return earliest, latest


# In order of days past due, each starting the day after the previous one ends; only the last is open-ended.
BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", "Current", None, 0),  # not yet due (due today counts as current)
    Bucket("d1_30", "1-30", 1, 30),
    Bucket("d31_60", "31-60", 31, 60),
    Bucket("d61_90", "61-90", 61, 90),
    Bucket("d90_plus", "90+", 91, None),
)
BUCKET_KEYS = tuple(b.key for b in BUCKETS)
OVER_30_KEYS = ("d31_60", "d61_90", "d90_plus")


def days_past_due(due_date: date, as_of: date) -> int:
    """Days since the due date; 0 or less: not yet past due."""
    return (as_of - due_date).days


def bucket_for(days: int) -> Bucket:
    for bucket in BUCKETS:
        if bucket.contains(days):
            return bucket
    raise AssertionError(f"no bucket for {days} days")  # the buckets cover every integer
