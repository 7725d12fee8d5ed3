"""Reading what a person types in the legal entity's locale (app/locale_input.py), and the field rules on top of it."""
from datetime import date
from decimal import Decimal

import pytest

from app.formatting import format_number, format_percent, format_unit_price
from app.locale_input import (LocaleInputError, date_form, input_date, input_number, number_hint, parse_date_text,
                              parse_number, parse_time_text)
from app.records.validation import FieldError, parse_date, parse_decimal, parse_price, parse_quantity, parse_rate

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize("locale, text, expected", [
    # de_DE: comma decimals, dot grouping
    ("de_DE", "30,00", "30.00"),
    ("de_DE", "2,5", "2.5"),
    ("de_DE", "1.234,56", "1234.56"),
    ("de_DE", "1.234.567,8", "1234567.8"),
    ("de_DE", "1234,56", "1234.56"),
    ("de_DE", ",5", "0.5"),
    ("de_DE", " 49 ", "49"),
    ("de_DE", "-5,5", "-5.5"),
    ("de_DE", "\u22125,5", "-5.5"),
    # a plain dot decimal where it cannot be grouping
    ("de_DE", "49.00", "49.00"),
    ("de_DE", "2.5", "2.5"),
    ("de_DE", "0.125", "0.125"),
    ("de_DE", "1234.5678", "1234.5678"),
    # ambiguous: correct grouping in de_DE, read as the locale writes it
    ("de_DE", "1.234", "1234"),
    ("de_DE", "49.000", "49000"),
    # en_US: dot decimals, comma grouping
    ("en_US", "30.00", "30.00"),
    ("en_US", "1,234.56", "1234.56"),
    ("en_US", "1,234", "1234"),
    ("en_US", "0.125", "0.125"),
    # fr_FR: comma decimals, narrow no-break space grouping; a no-break or plain space as typed
    ("fr_FR", f"1{NNBSP}234,56", "1234.56"),
    ("fr_FR", f"1{NBSP}234,56", "1234.56"),
    ("fr_FR", "1 234 567,5", "1234567.5"),
    ("fr_FR", "2,5", "2.5"),
    ("fr_FR", "49.00", "49.00"),
    ("fr_FR", "1.234", "1.234"),  # a dot is no grouping in fr_FR: a decimal point
    # de_CH: dot decimals, apostrophe grouping (’ or ')
    ("de_CH", "1\u2019234.50", "1234.50"),
    ("de_CH", "1'234.50", "1234.50"),
    # en_IN: lakh grouping
    ("en_IN", "12,34,567.5", "1234567.5"),
])
def test_numbers_in_the_locale(locale, text, expected):
    number = parse_number(text, locale)
    assert number == Decimal(expected) and isinstance(number, Decimal)
    assert str(number) == expected  # the digits as typed, no float on the way


@pytest.mark.parametrize("locale, text, example", [
    ("de_DE", "49,00,0", "1.234,56"),
    ("de_DE", "1,234.56", "1.234,56"),  # en grouping in de_DE: refused, not guessed
    ("de_DE", "1.2345,6", "1.234,56"),  # grouping in the wrong places
    ("de_DE", "12.34.5", "1.234,56"),
    ("de_DE", "1e5", "1.234,56"),
    ("de_DE", "NaN", "1.234,56"),
    ("de_DE", "Infinity", "1.234,56"),
    ("de_DE", "١٢", "1.234,56"),  # digits other than 0-9
    ("de_DE", "-", "1.234,56"),
    ("de_DE", "30,00 €", "1.234,56"),
    ("de_DE", "19,45 %", "1.234,56"),  # a percent sign only where a rate is asked for
    ("en_US", "30,00", "1,234.56"),  # en keeps dots: a comma decimal is refused
    ("en_US", "2,5", "1,234.56"),
    ("fr_FR", "1 23,5", f"1{NNBSP}234,56"),
])
def test_garbage_is_refused_naming_the_locales_form(locale, text, example):
    with pytest.raises(LocaleInputError) as caught:
        parse_number(text, locale)
    assert str(caught.value) == f"{text!r} is not a number: write e.g. {example}"


@pytest.mark.parametrize("text", ["19,45", "19,45 %", "19,45%", f"19,45{NBSP}%", "19.45", "19.45 %"])
def test_percentages_in_de_DE(text):
    assert parse_rate(text, "de_DE") == Decimal("19.45")


def test_field_rules_read_the_locale_only_when_given_one():
    # The web forms pass the entity's locale; the CSV importer and the CLI pass none and keep dot decimals.
    assert parse_price("30,00", "de_DE") == Decimal("30.00")
    assert parse_quantity("2,5", "de_DE") == Decimal("2.5")
    assert parse_price("49.00") == Decimal("49.00")
    with pytest.raises(FieldError, match=r"use a dot for decimals, e\.g\. 49\.00"):
        parse_price("30,00")
    with pytest.raises(FieldError, match="is negative"):
        parse_price("-1,5", "de_DE")
    with pytest.raises(FieldError, match=r"^'49,00,0' is not a number: write e\.g\. 1\.234,56$"):
        parse_decimal("49,00,0", locale="de_DE")
    with pytest.raises(FieldError, match=r"120 is outside 0-100 \(a percentage, e\.g\. 19,45\)"):
        parse_rate("120", "de_DE")
    with pytest.raises(FieldError, match=r"outside 0-100 \(a percentage, e\.g\. 19\.45\)"):
        parse_rate("101")
    with pytest.raises(FieldError):
        parse_rate("19 %")  # no locale: the importer's plain number


def test_the_hint_says_how_the_ambiguous_case_is_read():
    assert number_hint("de_DE") == "e.g. 1.234,56 or 49.00 (1.234 reads as 1234)"
    assert number_hint("en_US") == "e.g. 1,234.56"
    assert number_hint("fr_FR") == f"e.g. 1{NNBSP}234,56 or 49.00"


@pytest.mark.parametrize("locale, value, digits, shown", [
    ("de_DE", Decimal("49.0000"), 2, "49,00"),
    ("de_DE", Decimal("2.5000"), 0, "2,5"),
    ("de_DE", Decimal("19.4500"), 0, "19,45"),
    ("de_DE", Decimal("0.123456"), 2, "0,123456"),
    ("de_DE", Decimal("1234.5"), 2, "1234,50"),  # no grouping in a form field
    ("en_US", Decimal("49.0000"), 2, "49.00"),
    ("fr_FR", Decimal("1234.5"), 0, "1234,5"),
    (None, Decimal("2.50"), 0, "2.5"),
])
def test_form_values_read_back(locale, value, digits, shown):
    assert input_number(value, locale, digits) == shown
    if locale:
        assert parse_number(shown, locale) == value


@pytest.mark.parametrize("locale, text", [("de_DE", "31.03.2026"), ("de_DE", "31.3.2026"), ("de_DE", "2026-03-31"),
                                          ("en_US", "03/31/2026"), ("en_US", "3/31/2026"), ("fr_FR", "31/03/2026"),
                                          ("en_GB", "31/03/2026"), ("ja_JP", "2026/03/31"), (None, "2026-03-31")])
def test_dates_in_the_locales_order_or_iso(locale, text):
    assert parse_date_text(text, locale) == date(2026, 3, 31)


def test_dates_shown_in_forms_and_placeholders():
    assert input_date(date(2026, 3, 1), "de_DE") == "01.03.2026"
    assert input_date(date(2026, 3, 1), "en_US") == "03/01/2026"
    assert input_date(date(2026, 3, 1), None) == "2026-03-01"
    assert [date_form(locale).placeholder for locale in ("de_DE", "en_US", "fr_FR", "sv_SE")] == [
        "DD.MM.YYYY", "MM/DD/YYYY", "DD/MM/YYYY", "YYYY-MM-DD"]


@pytest.mark.parametrize("locale, text", [("de_DE", "03/31/2026"), ("de_DE", "31.03.26"), ("de_DE", "31.13.2026"),
                                          ("en_US", "31.03.2026"), (None, "31.03.2026"), ("de_DE", "someday")])
def test_bad_dates_say_which_form_to_use(locale, text):
    with pytest.raises(FieldError, match="is not a date \\(use " + ("DD.MM.YYYY or " if locale == "de_DE" else
                                                                     "MM/DD/YYYY or " if locale else "") + "YYYY-MM-DD"):
        parse_date(text, locale)


@pytest.mark.parametrize("text, expected", [("18:00", (18, 0)), ("06:00", (6, 0)), ("6:05", (6, 5)),
                                            ("6:00 PM", (18, 0)), ("12:30 am", (0, 30)), ("6 pm", (18, 0))])
def test_times_of_day(text, expected):
    assert (parse_time_text(text).hour, parse_time_text(text).minute) == expected


@pytest.mark.parametrize("text", ["24:00", "6", "18:60", "13:00 PM", "noon"])
def test_bad_times(text):
    with pytest.raises(LocaleInputError, match="not a time of day"):
        parse_time_text(text)


def test_one_formatting_for_rates_amounts_and_quantities():
    assert format_percent(Decimal("19.4500"), "de_DE") == f"19,45{NBSP}%"
    assert format_percent(Decimal("19.45"), "en_US") == f"19.45{NBSP}%"
    assert format_percent(Decimal("7.00"), "de_DE") == f"7{NBSP}%"
    assert format_unit_price(Decimal("49.0000"), "EUR", "de_DE") == f"49,00{NBSP}€"
    assert format_unit_price(Decimal("0.123456"), "EUR", "de_DE") == f"0,123456{NBSP}€"
    assert format_number(Decimal("2.5000"), "de_DE") == "2,5"
    assert format_number(Decimal("1234.56789"), "de_DE") == "1.234,56789"  # every decimal of a quantity kept
