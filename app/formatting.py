"""Money, rate and number formatting in the legal entity's locale, the one formatting pages, e-mails and PDFs use.

Money: Babel's output for the locale, without Babel's per-call cost.

Babel's `format_currency` costs ≈ 25 µs a call; the aging page shows up to
six amounts for each of thousands of customers, which made formatting most of the page's time.
`fast_money` looks up the locale's pattern, symbols and the currency's digits once per
(currency, locale) and then only groups digits. Its output is Babel's, character for character
(tests/web/test_aging_pages.py compares them over many locales, currencies and amounts); any
case it does not handle (negative or non-finite amounts, unusual patterns) goes to Babel.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import (format_currency, format_decimal, get_currency_precision, get_currency_symbol,
                           get_decimal_symbol, get_group_symbol)

_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class _Format:
    prefix: str
    suffix: str
    quantum: Decimal
    digits: int
    decimal: str
    group: str
    first_group: int
    next_group: int
    min_int: int


@lru_cache(maxsize=256)
def _format_for(currency: str, locale: str) -> _Format | None:
    try:
        loc = Locale.parse(locale)
        pattern = loc.currency_formats["standard"]
    except Exception:  # noqa: BLE001 - Babel itself will say what is wrong
        return None
    if pattern.exp_prec or "@" in pattern.pattern or pattern.scale or pattern.number_pattern == "":
        return None
    affixes = pattern.prefix[0] + pattern.suffix[0]
    if "¤¤¤" in affixes:  # the currency's name depends on the amount (plural forms)
        return None

    def fill(affix: str) -> str:
        return affix.replace("¤¤", currency.upper()).replace("¤", get_currency_symbol(currency, loc))

    digits = get_currency_precision(currency)
    return _Format(fill(pattern.prefix[0]), fill(pattern.suffix[0]), Decimal(1).scaleb(-digits), digits,
                   get_decimal_symbol(loc), get_group_symbol(loc), pattern.grouping[0], pattern.grouping[1],
                   pattern.int_prec[0])


def fast_money(amount: Decimal | None, currency: str, locale: str) -> str:
    """58,53 € for de_DE: exactly Babel's `format_currency(amount, currency, locale=locale)`, faster."""
    if amount is None:
        return ""
    amount = Decimal(amount)
    spec = _format_for(currency, locale)
    if spec is None or amount.is_signed() or not amount.is_finite():
        return format_currency(amount, currency, locale=locale)
    integer, _, fraction = f"{amount.normalize().quantize(spec.quantum):f}".partition(".")
    if len(integer) < spec.min_int:
        integer = "0" * (spec.min_int - len(integer)) + integer
    size, grouped = spec.first_group, ""
    while len(integer) > size:
        grouped = spec.group + integer[-size:] + grouped
        integer = integer[:-size]
        size = spec.next_group
    number = integer + grouped
    if spec.digits:
        number += spec.decimal + fraction.ljust(spec.digits, "0")
    result = spec.prefix + number + spec.suffix
    return _QUOTED.sub(lambda m: m.group(1) or "'", result) if "'" in result else result


# ------------------------------------------------------------------ one formatting for pages, e-mails and PDFs
def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """An amount in the currency's digits: 58,53 € (de_DE), €58.53 (en_IE)."""
    return fast_money(Decimal(amount), currency, locale)


def format_unit_price(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price as the locale writes an amount, keeping decimals beyond the currency's: 49,00 €,
    0,123456 € (de_DE) — never "49 EUR"."""
    value = Decimal(amount)
    quantum = Decimal(1).scaleb(-get_currency_precision(currency))
    if value == value.quantize(quantum):
        return fast_money(value, currency, locale)
    return format_currency(value.normalize(), currency, locale=locale, currency_digits=False,
                           decimal_quantization=False)


def format_number(value: Decimal | int, locale: str) -> str:
    """A quantity or count with the locale's signs, every decimal kept: 2,5 and 1.234 (de_DE)."""
    return format_decimal(Decimal(value).normalize(), locale=locale, decimal_quantization=False)


def format_percent(rate: Decimal, locale: str) -> str:
    """19,45 % (de_DE), 19.45 % (en_US), 7 % — the rate as stated, with the locale's decimal sign and a no-break
    space before the sign, the same on pages, in e-mails and in PDFs."""
    return f"{format_decimal(Decimal(rate).normalize(), locale=locale, decimal_quantization=False)}\u00a0%"
