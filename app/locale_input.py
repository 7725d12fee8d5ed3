"""What a person types, read in the legal entity's locale, and the values a form shows, written so they read back.

Numbers (`parse_number`): the locale's decimal sign and digit grouping, as Babel's CLDR data has them — de_DE
"1.234,56", "30,00", "2,5"; en_US "1,234.56"; fr_FR "1 234,56" (a narrow no-break space, a no-break space or a
plain space: whatever the keyboard gave). Only the digits 0-9; a leading minus; no exponents.

A plain dot decimal ("49.00", "2.5", "0.125") keeps working in a comma-decimal locale where it cannot be read
otherwise. One case can: in a locale that groups digits with a dot (de_DE, es_ES, pt_BR …) "1.234" and "49.000"
are correct grouping, and are read as the locale writes them — one thousand two hundred and thirty-four,
forty-nine thousand — as Babel and every spreadsheet in that locale read them. A dot followed by one, two or more
than three digits, or after a leading zero ("0.125"), is no grouping and is a decimal point. The forms say so
in their hints (`number_hint`).

Dates (`parse_date_text`): ISO 8601 (YYYY-MM-DD) always, and the locale's numeric order with a four-digit year —
31.03.2026 (de_DE), 03/31/2026 (en_US), 31/03/2026 (fr_FR). Times: HH:MM on a 24-hour clock, which the locales
that use one (de_DE, fr_FR …) write, and "6:00 PM" as well where the locale uses a 12-hour clock.

Display (amounts, rates on pages, e-mails and PDFs) is app/formatting.py; this module is the input side.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

from app.errors import LocaleInputError

SPACES = " \u00a0\u202f\u2009"  # space, no-break space, narrow no-break space, thin space
APOSTROPHES = "'\u2019"  # de_CH groups with a right single quotation mark; keyboards type "'"
MINUS = "-\u2212"  # hyphen-minus, and the minus sign some locales write (sv_SE, nb_NO)
PERCENT = "%\u066a"


@dataclass(frozen=True)
class NumberForm:
    """How a locale writes numbers, and the patterns that read them."""

    locale: str
    decimal: str
    group: str
    example: str  # 1.234,56
    localized: re.Pattern
    plain_dot: re.Pattern | None  # "49.00" where the locale's decimal sign is not a dot


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


@lru_cache(maxsize=128)
def number_form(locale: str) -> NumberForm:
    loc = Locale.parse(locale)
    decimal, group = get_decimal_symbol(loc), get_group_symbol(loc)
    primary, secondary = loc.decimal_formats[None].grouping
    if group in SPACES:
        groups = SPACES
    elif group in APOSTROPHES:
        groups = APOSTROPHES
    else:
        groups = group
    g, d = f"[{re.escape(groups)}]", re.escape(decimal)
    grouped = rf"[1-9][0-9]{{0,{secondary - 1}}}(?:{g}[0-9]{{{secondary}}})*{g}[0-9]{{{primary}}}"
    localized = re.compile(rf"(?P<int>{grouped}|[0-9]+)?(?:{d}(?P<frac>[0-9]+))?")
    plain_dot = None
    if decimal != ".":
        plain_dot = re.compile(r"(?P<int>[0-9]*)\.(?P<frac>[0-9]+)")
    return NumberForm(str(loc), decimal, group, format_decimal(Decimal("1234.56"), locale=loc), localized, plain_dot)


def parse_number(text: str, locale: str, *, percent: bool = False) -> Decimal:
    """The number `text` says in `locale` ("1.234,56" → Decimal("1234.56") for de_DE); with `percent`, a
    trailing percent sign is allowed ("19,45 %"). Raises LocaleInputError naming the form the locale expects."""
    form = number_form(locale)
    body = text.strip()
    if percent and body[-1:] in PERCENT:
        body = body[:-1].rstrip(SPACES)
    sign = ""
    if body and body[0] in MINUS:
        sign, body = "-", body[1:]
    elif body[:1] == "+":
        body = body[1:]
    for pattern in (form.localized, form.plain_dot):
        match = pattern.fullmatch(body) if pattern is not None else None
        if match and (match.group("int") or match.group("frac")):
            integer = re.sub(r"[^0-9]", "", match.group("int") or "") or "0"
            fraction = match.group("frac")
            return Decimal(f"{sign}{integer}.{fraction}" if fraction else f"{sign}{integer}")
    raise LocaleInputError(f"{_shown(text.strip())} is not a number: write e.g. {form.example}")


def number_hint(locale: str) -> str:
    """What a number field's hint says: "e.g. 1.234,56 or 49.00 (1.234 reads as 1234)" for de_DE."""
    form = number_form(locale)
    if form.decimal == ".":
        return f"e.g. {form.example}"
    hint = f"e.g. {form.example} or 49.00"
    return hint + " (1.234 reads as 1234)" if form.group == "." else hint


def input_number(value: Decimal | int | None, locale: str | None, min_digits: int = 0) -> str:
    """A value as a form field shows it, so that it reads back: 49,00 and 2,5 for de_DE; no grouping, every
    digit kept (19.4500 → 19,45; with `min_digits` 2, 49 → 49,00)."""
    if value is None:
        return ""
    text = format(Decimal(value).normalize(), "f")
    integer, _, fraction = text.partition(".")
    fraction = fraction.ljust(min_digits, "0")
    decimal = number_form(locale).decimal if locale else "."
    return f"{integer}{decimal}{fraction}" if fraction else integer


# ------------------------------------------------------------------ dates and times
@dataclass(frozen=True)
class DateForm:
    order: str  # "dmy", "mdy" or "ymd"
    separator: str
    placeholder: str  # DD.MM.YYYY
    pattern: re.Pattern


@lru_cache(maxsize=128)
def date_form(locale: str) -> DateForm:
    """The locale's numeric date with a four-digit year, from its CLDR short date (dd.MM.yy → DD.MM.YYYY)."""
    short = Locale.parse(locale).date_formats["short"].pattern
    fields = re.findall(r"d+|M+|y+", short)
    order = "".join(f[0].lower() for f in fields)
    if sorted(order) != ["d", "m", "y"]:
        order = "ymd"
    found = re.search(r"[dMy]+([^dMy'\w]+)[dMy]", short)
    separator = (found.group(1) if found else "-").strip("\u200e\u200f ") or "-"
    names = {"d": "DD", "m": "MM", "y": "YYYY"}
    placeholder = separator.join(names[c] for c in order)
    parts = {"d": r"(?P<d>[0-9]{1,2})", "m": r"(?P<m>[0-9]{1,2})", "y": r"(?P<y>[0-9]{4})"}
    pattern = re.compile(r"[./\- ]\s*".join(parts[c] for c in order))
    return DateForm(order, separator, placeholder, pattern)


def parse_date_text(text: str, locale: str | None) -> date:
    """A date as ISO 8601 (2026-03-31) or in the locale's numeric order (31.03.2026 for de_DE); LocaleInputError
    says which form to use."""
    body = text.strip()
    try:
        if locale is None or re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", body):
            return date.fromisoformat(body)
        return _local_date(body, locale)
    except ValueError:
        expected = f"{date_form(locale).placeholder} or YYYY-MM-DD" if locale else "YYYY-MM-DD"
        raise LocaleInputError(f"{_shown(body)} is not a date (use {expected})") from None


def _local_date(body: str, locale: str) -> date:
    match = date_form(locale).pattern.fullmatch(body)
    if match is None:
        raise ValueError(body)
    return date(int(match["y"]), int(match["m"]), int(match["d"]))


def input_date(day: date | None, locale: str | None) -> str:
    """A date as a form field shows it: 31.03.2026 for de_DE, ISO without a locale."""
    if day is None:
        return ""
    if not locale:
        return day.isoformat()
    form = date_form(locale)
    parts = {"d": f"{day.day:02d}", "m": f"{day.month:02d}", "y": f"{day.year:04d}"}
    return form.separator.join(parts[c] for c in form.order)


def uses_24_hour_clock(locale: str) -> bool:
    return "H" in Locale.parse(locale).time_formats["short"].pattern


def parse_time_text(text: str) -> time:
    """18:00, 6:00, 6:00 PM, 6 pm → a time of day; LocaleInputError otherwise."""
    body = text.strip().lower().replace(".", "")
    match = re.fullmatch(r"([0-9]{1,2})(?::([0-9]{2}))?\s*(am|pm)?", body)
    if match:
        hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
        if half and 1 <= hour <= 12:
            hour = hour % 12 + (12 if half == "pm" else 0)
        elif half:
            hour = 99
        if (half or match.group(2)) and hour <= 23 and minute <= 59:
            return time(hour, minute)
    raise LocaleInputError(f"{_shown(text.strip())} is not a time of day (use HH:MM on a 24-hour clock, e.g. 06:00)")
