"""Field rules for records, in one place: the CSV importer, the CLI and the web forms use them.

Each parser takes the raw text a person typed and returns a clean value, or raises
`FieldError` with a message that says what is wrong and what is expected.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.billing.money import CurrencyError, minor_unit
from app.billing.periods import FREQUENCIES
from app.models.parties import PAYMENT_METHODS


class FieldError(ValueError):
    """One field's value is wrong; the message says why."""


class ValidationError(ValueError):
    """A record cannot be saved; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def required(value: str | None, what: str = "value") -> str:
    text = (value or "").strip()
    if not text:
        raise FieldError(f"{what} is required")
    return text


def optional(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def parse_decimal(value: str | None, *, minimum: Decimal | None = None, maximum: Decimal | None = None) -> Decimal:
    text = required(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise FieldError(f"{text!r} is not a number (use a dot for decimals, e.g. 49.00)") from None
    if not number.is_finite():
        raise FieldError(f"{text!r} is not a number")
    if minimum is not None and number < minimum:
        raise FieldError(f"{text} is negative" if minimum == 0 else f"{text} is below {minimum}")
    if maximum is not None and number > maximum:
        raise FieldError(f"{text} is above {maximum}")
    return number


def parse_quantity(value: str | None) -> Decimal:
    return parse_decimal(value, minimum=Decimal(0))


def parse_price(value: str | None) -> Decimal:
    return parse_decimal(value, minimum=Decimal(0))


def parse_rate(value: str | None) -> Decimal:
    rate = parse_decimal(value)
    if rate < 0 or rate > 100:
        raise FieldError(f"{value.strip()} is outside 0-100 (a percentage, e.g. 19.45)")
    return rate


def parse_date(value: str | None) -> date:
    text = required(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def parse_optional_date(value: str | None) -> date | None:
    return parse_date(value) if optional(value) else None


def parse_currency(value: str | None) -> str:
    code = required(value).upper()
    try:
        minor_unit(code)
    except CurrencyError as error:
        raise FieldError(str(error)) from None
    return code


def parse_frequency(value: str | None) -> str:
    text = required(value).lower()
    if text not in FREQUENCIES:
        raise FieldError(f"unknown frequency {text!r}: use one of {', '.join(FREQUENCIES)}")
    return text


def parse_payment_method(value: str | None) -> str:
    text = (optional(value) or "manual").lower()
    if text not in PAYMENT_METHODS:
        raise FieldError(f"unknown payment method {text!r}: use one of {', '.join(PAYMENT_METHODS)}")
    return text


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_email(value: str | None) -> str | None:
    text = optional(value)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise FieldError(f"{text!r} is not an e-mail address")
    return text.lower()


# IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def parse_iban(value: str | None) -> str:
    """An IBAN, normalised (no spaces, upper case), valid by length and ISO 7064 mod-97 checksum."""
    iban = re.sub(r"\s+", "", required(value)).upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", iban):
        raise FieldError(f"{iban!r} is not an IBAN (two letters, two check digits, then the account)")
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        raise FieldError(f"IBAN {iban} has {len(iban)} characters; {iban[:2]} IBANs have {expected}")
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise FieldError(f"IBAN {iban} has an invalid checksum (a typing error?)")
    return iban


def parse_timezone(value: str | None) -> str:
    name = required(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None
    return name


def parse_country(value: str | None) -> str:
    code = required(value).upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise FieldError(f"{code!r} is not a two-letter ISO 3166 country code (e.g. DE)")
    return code


def parse_locale(value: str | None) -> str:
    from babel import Locale, UnknownLocaleError

    name = required(value)
    try:
        return str(Locale.parse(name))
    except (UnknownLocaleError, ValueError):
        raise FieldError(f"unknown locale {name!r} (e.g. de_DE, en_US)") from None


def parse_code(value: str | None) -> str:
    code = required(value).upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,15}", code):
        raise FieldError(f"{code!r} must be 1-16 letters, digits, '-' or '_' (e.g. DE01)")
    return code
