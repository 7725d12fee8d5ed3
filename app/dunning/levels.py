"""Reminder levels, fees and statutory interest: plain functions over plain values (no Flask, no session, no clock).

A level is reached by days past due (default 7 / 21 / 35). Levels are sent in order, one step at a time: an
invoice that was never reminded gets level 1 first, however late it is, and the next level waits at least the
gap between the two levels' days after the previous reminder. So a reminder never jumps to a final notice, and a
daily run never escalates an invoice on consecutive days.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from app.billing.money import round_money


def parse_level_days(text: str) -> tuple[int, ...]:
    """"7,21,35" → (7, 21, 35): increasing positive whole numbers, else ValueError."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        days = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a list of whole numbers of days like 7,21,35") from None
    if not days or any(d <= 0 for d in days) or list(days) != sorted(set(days)):
        raise ValueError(f"{text!r} must be increasing positive numbers of days, e.g. 7,21,35")
    return days


def parse_level_fees(text: str) -> tuple[Decimal, ...]:
    """"0,5.00,10.00" → (0, 5.00, 10.00): one fee per level, 0 or more, with a dot for decimals; else ValueError."""
    parts = [p.strip() for p in str(text).split(",")]
    if not str(text).strip():
        return ()
    fees = []
    for part in parts:
        try:
            fee = Decimal(part)
        except InvalidOperation:
            raise ValueError(f"{part!r} is not an amount: write fees like 0,5.00,10.00 (a dot for decimals, "
                             "a comma between levels)") from None
        if not fee.is_finite() or fee < 0:
            raise ValueError(f"{part!r} is not a fee: fees are 0 or more")
        if fee != fee.quantize(Decimal("0.01")):
            raise ValueError(f"{part!r} has more than two decimals")
        fees.append(fee)
    return tuple(fees)


def fee_for(level: int, fees: tuple[Decimal, ...]) -> Decimal:
    """The fee of a level (1-based); a level without a fee of its own costs nothing."""
    return fees[level - 1] if 0 < level <= len(fees) else Decimal("0")


def days_past_due(due_date: date, as_of: date) -> int:
    return (as_of - due_date).days


def next_level(days_overdue: int, level_days: tuple[int, ...], last_level: int = 0,
               days_since_last: int | None = None) -> int | None:
    """The level an invoice gets now, or None.

    `last_level`: the highest level already sent for it (0: none); `days_since_last`: days since that reminder.
    The next level is last_level + 1 when the invoice is at least that level's days past due and, after an
    earlier reminder, at least the gap between the two levels' days has passed since it.
    """
    if last_level >= len(level_days):
        return None
    level = last_level + 1
    if days_overdue < level_days[level - 1]:
        return None
    if last_level > 0:
        gap = level_days[level - 1] - level_days[last_level - 1]
        if days_since_last is None or days_since_last < gap:
            return None
    return level


def statutory_interest(open_amount: Decimal, annual_rate_percent: Decimal | None, days: int,
                       currency: str = "EUR") -> Decimal:
    """open amount × rate % × days / 365, rounded half-up (round_money) to the currency's minor unit; 0 without a rate or days."""
    if annual_rate_percent is None or days <= 0 or open_amount <= 0:
        return round_money(Decimal("0"), currency)
    raw = Decimal(open_amount) * Decimal(annual_rate_percent) / Decimal(100) * Decimal(days) / Decimal(365)
    return round_money(raw, currency)


@dataclass(frozen=True)
class NoticeTotals:
    open_amount: Decimal
    fee: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.open_amount + self.fee + self.interest


def notice_totals(open_amounts: list[Decimal], interests: list[Decimal], fee: Decimal, currency: str) -> NoticeTotals:
    """What one reminder claims: the invoices' open amounts, the level's fee and the interest, each to the cent."""
    return NoticeTotals(round_money(sum(open_amounts, Decimal("0")), currency), round_money(fee, currency),
                        round_money(sum(interests, Decimal("0")), currency))


__all__ = ["NoticeTotals", "days_past_due", "fee_for", "next_level", "notice_totals",
           "parse_level_days", "parse_level_fees", "statutory_interest"]
