"""Field rules for records, in one place: the CSV importer, the CLI and the web forms use them.

Each parser takes the raw text a person typed and returns a clean value, or raises
`FieldError` with a message that says what is wrong and what is expected.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.billing.money import minor_unit
from app.billing.periods import FREQUENCIES
from app.errors import CurrencyError, FieldError, LocaleInputError, ValidationError
from app.locale_input import input_date, input_number, parse_date_text, parse_number
from app.models import Contract, ContractLine, Customer, LegalEntity, Payment
from app.models.parties import PAYMENT_METHODS
from app.text import character_name, control_character  # noqa: F401 — part of the field rules' API


_FROM_RAW = object()


class Fields:
    """Parses the fields of one record and collects every problem, so a form or a CSV row can
    report them all at once: `fields.take("email", parse_email)`, then `fields.result()`."""

    def __init__(self, raw: Mapping[str, Any] | None = None):
        self.raw = raw or {}
        self.clean: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def take(self, field: str, parse: Callable[[Any], Any], raw: Any = _FROM_RAW) -> None:
        try:
            self.clean[field] = parse(self.raw.get(field) if raw is _FROM_RAW else raw)
        except FieldError as error:
            self.errors[field] = str(error)

    def result(self) -> dict[str, Any]:
        if self.errors:
            raise ValidationError(self.errors)
        return self.clean


def required(value: str | None, what: str = "value") -> str:
    text = (value or "").strip()
    if not text:
        raise FieldError(f"{what} is required")
    return text


def optional(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


# ------------------------------------------------------------------ characters and lengths
# The character rules (control characters, how a message names one) are in app/text.py, which the
# billing core shares.
# A one-line value stored in a Text column (a line description, a reason) still has a length limit.
ONE_LINE_TEXT_MAX = 500
MULTILINE_TEXT_MAX = 2000


def one_line(text: str | None, what: str = "value", *, multiline: bool = False) -> str | None:
    """`text` unchanged, or FieldError when it holds a control character (line breaks allowed if `multiline`)."""
    if text is None:
        return None
    found = control_character(text, multiline=multiline)
    if found is not None:
        position, character = found
        rule = "may hold only plain text, tabs and line breaks" if multiline else "must be one line of plain text"
        raise FieldError(f"{what} contains {character_name(character)} at character {position}; it {rule}")
    return text


def column_length(column) -> int:
    """The characters a String column holds (`Customer.name` → 200): field rules read it from the model,
    so the two cannot drift."""
    length = column.expression.type.length
    if length is None:
        raise TypeError(f"{column} has no length; give the field rule one (e.g. ONE_LINE_TEXT_MAX)")
    return length


def column_maximum(column) -> Decimal:
    """The largest number a Numeric column holds (`ContractLine.quantity`, Numeric(18, 4) → 99999999999999.9999):
    a larger one is a database error on PostgreSQL ("numeric field overflow"), so the field rule refuses it."""
    kind = column.expression.type
    return Decimal(10) ** (kind.precision - kind.scale) - Decimal(10) ** -kind.scale


def parse_decimal(value: str | None, *, minimum: Decimal | None = None, maximum: Decimal | None = None,
                  locale: str | None = None, percent: bool = False) -> Decimal:
    """A number as typed. With `locale` (a web form: the working legal entity's), in that locale's writing
    (app/locale_input.py: "1.234,56" and "30,00" for de_DE, a plain "49.00" where unambiguous; with `percent`, a
    trailing "%" too); without one (the CSV importer, the CLI), a plain number with a dot for decimals."""
    text = required(value)
    if locale:
        try:
            number = parse_number(text, locale, percent=percent)
        except LocaleInputError as error:
            raise FieldError(str(error)) from None
    else:
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


def parse_quantity(value: str | None, locale: str | None = None) -> Decimal:
    """A contract or invoice line's quantity: at least 0, at most what its column holds."""
    return parse_decimal(value, minimum=Decimal(0), maximum=column_maximum(ContractLine.quantity), locale=locale)


def parse_unit_price(value: str | None, locale: str | None = None) -> Decimal:
    """A contract or invoice line's unit price: at least 0, at most what its column holds."""
    return parse_decimal(value, minimum=Decimal(0), maximum=column_maximum(ContractLine.unit_price), locale=locale)


def parse_price(value: str | None, locale: str | None = None) -> Decimal:
    return parse_decimal(value, minimum=Decimal(0), locale=locale)


def parse_rate(value: str | None, locale: str | None = None) -> Decimal:
    """A percentage, 0-100: "19.45"; with `locale` also "19,45" and "19,45 %" (de_DE)."""
    rate = parse_decimal(value, locale=locale, percent=True)
    if rate < 0 or rate > 100:
        example = input_number(Decimal("19.45"), locale)
        raise FieldError(f"{value.strip()} is outside 0-100 (a percentage, e.g. {example})")
    return rate


def parse_late_interest_rate(value: Decimal | str | None, locale: str | None = None) -> Decimal | None:
    """Statutory interest on overdue invoices, percent per year with at most two decimals (e.g. 9.12 for German
    B2B: the base rate + 9 points); empty: no interest on payment reminders."""
    if isinstance(value, Decimal):  # the stored value, unchanged
        return value
    if optional(value) is None:
        return None
    rate = parse_rate(value, locale)
    if rate != rate.quantize(Decimal("0.01")):
        raise FieldError(f"{value.strip()} has more than two decimals (a rate per year, e.g. "
                         f"{input_number(Decimal('9.12'), locale)})")
    return rate


# Dates a person enters: far enough either way for any contract, near enough that date arithmetic
# (periods, due dates, aging windows) never leaves Python's calendar (years 1-9999).
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2999, 12, 31)


def check_date_range(day: date) -> date:
    """`day` unchanged, or FieldError when it is outside DATE_MIN..DATE_MAX."""
    if not DATE_MIN <= day <= DATE_MAX:
        raise FieldError(f"{day.isoformat()} is outside the dates Arbill takes ({DATE_MIN} to {DATE_MAX})")
    return day


def parse_date(value: str | None, locale: str | None = None) -> date:
    """A date: YYYY-MM-DD, and with `locale` also the locale's numeric order (31.03.2026 for de_DE)."""
    text = required(value)
    try:
        day = parse_date_text(text, locale)
    except LocaleInputError as error:
        raise FieldError(str(error)) from None
    return check_date_range(day)


def parse_optional_date(value: str | None, locale: str | None = None) -> date | None:
    return parse_date(value, locale) if optional(value) else None


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


EMAIL_MAX_LENGTH = 254  # RFC 5321's limit for a path, and our columns' length


def parse_email(value: str | None) -> str | None:
    """An e-mail address, lower case, or None when empty: the one address rule for users, customers,
    legal entities, the CSV importer, the CLI and the login form.

    Only plain addresses a mail server delivers to: no display names, quoted local parts or IP
    literals (so no quotes, angle brackets or spaces), a domain with a dot that is not a special-use
    name such as .test or .localhost (RFC 6761). Nothing is looked up in DNS.
    """
    from email_validator import EmailNotValidError, validate_email

    text = one_line(optional(value), "e-mail address")
    if text is None:
        return None
    check_length(text, "e-mail address", EMAIL_MAX_LENGTH)
    try:
        address = validate_email(text, check_deliverability=False, allow_quoted_local=False,
                                 allow_domain_literal=False, allow_display_name=False, allow_empty_local=False)
    except EmailNotValidError as error:
        raise FieldError(f"{text!r} is not an e-mail address: {error}") from None
    return address.normalized.lower()


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


# ------------------------------------------------------------------ added for the record forms
# (customers, contracts): the same rules, phrased the same way, as the importer's parsers.
def check_length(text: str | None, what: str, max_length: int) -> str | None:
    """`text` unchanged, or FieldError when it is longer than the column holds."""
    if text is not None and len(text) > max_length:
        raise FieldError(f"{what} is {len(text)} characters long; at most {max_length} fit")
    return text


def parse_name(value: str | None, what: str, max_length: int) -> str:
    """A required one-line name or reference, at most `max_length` characters."""
    return check_length(one_line(required(value, what), what), what, max_length)


def parse_optional_text(value: str | None, what: str, max_length: int) -> str | None:
    """An optional one-line text, at most `max_length` characters."""
    return check_length(one_line(optional(value), what), what, max_length)


def parse_multiline_text(value: str | None, what: str, max_length: int = MULTILINE_TEXT_MAX) -> str | None:
    """An optional text of several lines (an address), at most `max_length` characters."""
    return check_length(one_line(optional(value), what, multiline=True), what, max_length)


def parse_whole_number(value: str | None, what: str = "value", *, minimum: int = 0,
                       maximum: int = 2**31 - 1) -> int:
    """A whole number within minimum..maximum, written with the digits 0-9 only.

    `str.isdigit()` is no test: it is true for '²' and '١٢', which `int()` refuses or reads as 12.
    """
    text = required(value, what)
    if not re.fullmatch(r"[0-9]{1,20}", text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise FieldError(f"{shown!r} is not a whole number (use the digits 0-9)")
    number = int(text)
    if not minimum <= number <= maximum:
        raise FieldError(f"{number} is outside {minimum}-{maximum}")
    return number


ID_MAX = 2**31 - 1  # ids are PostgreSQL integers


def parse_id(value: str | None, what: str = "id") -> int:
    """A record id as a form or a query string has it: 1 to 2,147,483,647 (PostgreSQL's integer)."""
    number = parse_whole_number(value, what, maximum=10**20)
    if not 1 <= number <= ID_MAX:
        raise FieldError(f"{number} is not an id (ids run from 1 to {ID_MAX})")
    return number


# ------------------------------------------------------------------ the fields of records, one rule each
# Each names the field as the person knows it and bounds it by its column: the forms, the CSV
# importer and the CLI all call these, so a value one of them accepts fits the database.
def parse_customer_name(value: str | None) -> str:
    return parse_name(value, "customer name", column_length(Customer.name))


def parse_customer_email(value: str | None) -> str | None:
    """A customer's e-mail address: parse_email's rule, which fits the column."""
    assert column_length(Customer.email) >= EMAIL_MAX_LENGTH
    return parse_email(value)


def parse_contract_reference(value: str | None) -> str:
    return parse_name(value, "contract reference", column_length(Contract.reference))


def parse_line_description(value: str | None) -> str:
    return parse_name(value, "description", ONE_LINE_TEXT_MAX)


def parse_entity_name(value: str | None) -> str:
    return parse_name(value, "name", column_length(LegalEntity.name))


def parse_payment_reference(value: str | None) -> str:
    """The reference of a payment received (a bank statement's text): optional, one line."""
    return parse_optional_text(value, "reference", column_length(Payment.reference)) or ""


def parse_optional_days(value: int | str | None, low: int, high: int, example: int, empty: str = "") -> int | None:
    """A whole number of days within low-high; empty (None or blank) is None. `empty` says what None means."""
    if isinstance(value, int):
        days = value
    else:
        text = optional(value)
        if text is None:
            return None
        if not re.fullmatch(r"[0-9]+", text):
            raise FieldError(f"{text!r} is not a whole number of days (e.g. {example})")
        days = int(text)
    if not low <= days <= high:
        raise FieldError(f"{days} is outside {low}-{high} days{empty}")
    return days


def parse_payment_terms(value: str | None) -> int | None:
    """Days until an invoice is due, 0-365; empty means "the default applies"."""
    return parse_optional_days(value, 0, 365, 14)


def parse_collection_lead_days(value: int | str | None) -> int | None:
    """Days between closing a SEPA batch and the earliest collection date, 1-30; empty means "the Payment
    Collection Agent's setting applies"."""
    return parse_optional_days(value, 1, 30, 2, " (empty: the Payment Collection Agent's setting applies)")


MANDATE_REFERENCE_MAX = column_length(Customer.mandate_reference)  # SEPA: at most 35 characters


def parse_payment_details(raw: dict[str, str | None], today: date | None = None, locale: str | None = None) -> dict:
    """Payment method and the SEPA direct debit details it needs, as the contracts CSV has them.

    `raw` has the keys payment_method, iban, mandate_reference and mandate_date. `sepa_debit` needs an
    IBAN (valid checksum), a mandate reference and a mandate date; an IBAN given for `manual` is
    still checked. A mandate date after `today` (the legal entity's) is refused: a mandate is signed before it
    is used. The mandate date is read in `locale` when given (31.03.2026 for de_DE), else as YYYY-MM-DD. Raises
    ValidationError with every problem, keyed by those names.
    """
    fields = Fields(raw)
    clean, errors, take = fields.clean, fields.errors, fields.take

    take("payment_method", parse_payment_method)
    sepa = clean.get("payment_method") == "sepa_debit"
    if optional(raw.get("iban")) or sepa:
        take("iban", parse_iban if optional(raw.get("iban")) else lambda s: required(s, "IBAN (needed for sepa_debit)"))
    else:
        clean["iban"] = None
    if sepa:
        take("mandate_reference", lambda s: parse_name(
            required(s, "mandate reference (needed for sepa_debit)"), "mandate reference", MANDATE_REFERENCE_MAX))
        take("mandate_date", lambda s: parse_date(required(s, "mandate date (needed for sepa_debit)"), locale))
    else:
        take("mandate_reference", lambda s: parse_optional_text(s, "mandate reference", MANDATE_REFERENCE_MAX))
        take("mandate_date", lambda s: parse_optional_date(s, locale))
    signed = clean.get("mandate_date")
    if today is not None and signed is not None and signed > today:
        errors["mandate_date"] = (f"{input_date(signed, locale)} is after today ({input_date(today, locale)}): enter "
                                  "the date the customer signed the mandate, which is before its first debit")
    if errors:
        raise ValidationError(errors)
    return clean


def parse_optional_bic(value: str | None) -> str | None:
    """A BIC (SWIFT code): 8 or 11 characters, e.g. COBADEFFXXX; empty is allowed."""
    text = (optional(value) or "").replace(" ", "").upper()
    if not text:
        return None
    if not re.fullmatch(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?", text):
        raise FieldError(f"{text!r} is not a BIC (8 or 11 letters and digits, e.g. COBADEFFXXX)")
    return text


def parse_optional_creditor_id(value: str | None) -> str | None:
    """A SEPA creditor identifier, e.g. DE98ZZZ09999999999; empty is allowed."""
    text = (optional(value) or "").replace(" ", "").upper()
    if not text:
        return None
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}", text):
        raise FieldError(f"{text!r} is not a SEPA creditor identifier (e.g. DE98ZZZ09999999999)")
    return text
