"""bench/load.py's figures: the raw request times locust wrote (load_tour.py), cut to the measured window, per page:
requests, p50/p95/p99 (nearest rank of the exact times, not locust's rounded buckets), errors; requests per second."""
from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchlib.timing import say

PAGES = ("dashboard", "runs", "run: contracts", "run: invoices", "run: audit", "aging", "invoices", "invoice")
APART = ("PDF",)  # reported apart: the first download renders the PDF/A-3 (~0.1 s of CPU and more)


@dataclass
class Sample:
    start: float  # epoch seconds
    name: str
    ms: float
    ok: bool
    status: int  # 0: no answer
    error: str

    def cut_by(self, stop: float | None) -> bool:
        """Failed without an answer at the moment locust was told to stop: cut short by the bench, not an error."""
        return stop is not None and not self.ok and self.status == 0 and self.start + self.ms / 1000 >= stop - 0.5


def read_samples(path: Path) -> list[Sample]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [Sample(float(r[0]), r[1], float(r[2]), r[3] == "1", int(r[4]), r[5]) for r in csv.reader(f)
                if len(r) == 6]


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest rank: the smallest time with at least p % of the times at or below it."""
    return sorted_ms[max(0, math.ceil(p / 100 * len(sorted_ms)) - 1)]


@dataclass
class Row:
    name: str
    requests: int
    errors: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, name: str, samples: list[Sample]) -> "Row":
        times = sorted(s.ms for s in samples)
        row = cls(name, len(samples), sum(not s.ok for s in samples))
        if times:
            row.p50, row.p95, row.p99 = (percentile(times, p) for p in (50, 95, 99))
        return row

    def line(self) -> str:
        figures = (f"{self.p50:8.0f} {self.p95:8.0f} {self.p99:8.0f}" if self.requests
                   else f"{'-':>8} {'-':>8} {'-':>8}")
        return f"{self.name:<26} {self.requests:9,} {figures} {self.errors:7,}"


@dataclass
class LoadFigures:
    seconds: float
    pages: list[Row]
    all_pages: Row
    apart: list[Row]
    errors_outside: int  # failed requests outside the window (sign-in, ramp-up, after the run)
    cut: int  # requests without an answer when locust was stopped (left out of the figures, not errors)
    reasons: Counter  # why requests failed (all of them, in the window or not)

    @property
    def errors(self) -> int:
        return self.all_pages.errors + sum(r.errors for r in self.apart) + self.errors_outside

    @property
    def requests_per_second(self) -> float:
        return (self.all_pages.requests + sum(r.requests for r in self.apart)) / self.seconds


def figures(samples: list[Sample], start: float, end: float, stop: float | None = None) -> LoadFigures:
    """Requests that started in [start, end]; `stop`: when locust was told to stop (requests it cut are left out)."""
    cut = [s for s in samples if s.cut_by(stop)]
    samples = [s for s in samples if not s.cut_by(stop)]
    window = [s for s in samples if start <= s.start <= end]
    pages = [s for s in window if s.name in PAGES]
    return LoadFigures(end - start, [Row.of(n, [s for s in window if s.name == n]) for n in PAGES],
                       Row.of("all pages (PDF excluded)", pages),
                       [Row.of(n, [s for s in window if s.name == n]) for n in APART],
                       sum(not s.ok for s in samples if not start <= s.start <= end), len(cut),
                       Counter(f"{s.name}: {s.error}" for s in samples if not s.ok))


def print_table(f: LoadFigures) -> None:
    say(f"{'page':<26} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in f.pages:
        say(row.line())
    say(f.all_pages.line())
    for row in f.apart:
        say(row.line() + "   (apart)")
    say(f"requests/s                 {f.requests_per_second:9.1f} over {f.seconds:.1f} s "
        f"(PDF included); failed requests outside the window (sign-in, ramp-up) {f.errors_outside}; "
        f"cut short by stopping locust (left out) {f.cut}")
    for reason, count in f.reasons.most_common(5):
        say(f"  failed {count} x {reason}")
