"""Geometry of a server-rendered SVG bar chart (the template draws it; no JavaScript, no CDN).

Pure: amounts in, pixel positions out. Heights are proportional to the amounts (Decimal
arithmetic, rounded to whole pixels); a bar of a non-zero amount is at least 2 px high so it
stays visible next to a much larger one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MIN_VISIBLE_PX = 2


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    amount: Decimal
    x: int
    y: int
    width: int
    height: int

    @property
    def center(self) -> int:
        return self.x + self.width // 2


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    baseline: int  # y of the axis
    bars: tuple[Bar, ...]


def bar_chart(values: Sequence[tuple[str, str, Decimal]], *, width: int = 640, height: int = 240,
              top_margin: int = 28, bottom_margin: int = 32, gap: int = 24) -> BarChart:
    """Bars for (key, label, amount) triples, left to right, scaled to the largest amount."""
    if not values:
        return BarChart(width, height, height - bottom_margin, ())
    plot_height = height - top_margin - bottom_margin
    baseline = height - bottom_margin
    largest = max(amount for _, _, amount in values)
    slot = width // len(values)
    bar_width = max(1, slot - gap)
    bars = []
    for index, (key, label, amount) in enumerate(values):
        if largest > 0 and amount > 0:
            scaled = (amount * plot_height / largest).to_integral_value(rounding=ROUND_HALF_UP)
            bar_height = max(MIN_VISIBLE_PX, int(scaled))
        else:
            bar_height = 0
        x = index * slot + (slot - bar_width) // 2
        bars.append(Bar(key, label, amount, x, baseline - bar_height, bar_width, bar_height))
    return BarChart(width, height, baseline, tuple(bars))
