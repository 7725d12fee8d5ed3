"""ISO 11649 creditor references: what every invoice carries and what cash application looks for."""
import pytest
from hypothesis import given, strategies as st
from stdnum import iso11649

from app.billing.numbering import format_credit_note_number, format_invoice_number
from app.billing.references import (
    creditor_reference,
    format_creditor_reference,
    parse_creditor_references,
)

PREFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
prefixes = st.text(PREFIX_CHARS, min_size=1, max_size=16).filter(lambda p: p[0] not in "_-")
years = st.integers(2000, 2099)
sequences = st.integers(1, 2**31 - 1)  # the sequence column's range


def test_known_iso_11649_vector():
    # ISO 11649's own example: body 539007547034, check digits 18
    assert creditor_reference("5390-0754-7034") == "RF18539007547034"
    assert format_creditor_reference("RF18539007547034") == "RF18 5390 0754 7034"


def test_an_invoice_number_becomes_its_letters_and_digits():
    assert creditor_reference("DE01-2026-000042") == "RF73DE012026000042"
    assert creditor_reference("de01-2026-000042") == "RF73DE012026000042"
    assert format_creditor_reference("RF73DE012026000042") == "RF73 DE01 2026 0000 42"


def test_a_number_too_long_for_21_characters_keeps_three_prefix_characters():
    reference = creditor_reference("ACMEHOLDINGS01-2026-000042")
    assert reference[4:] == "ACM2026000042"
    assert iso11649.is_valid(reference)


def test_a_number_without_letters_or_digits_is_refused():
    with pytest.raises(ValueError, match="no letters or digits"):
        creditor_reference("--")


@given(prefixes, years, sequences)
def test_every_invoice_number_gets_a_valid_reference(prefix, year, sequence):
    reference = creditor_reference(format_invoice_number(prefix, year, sequence))
    assert iso11649.is_valid(reference)
    assert len(reference) <= 25
    assert parse_creditor_references(f"payment {format_creditor_reference(reference)} thanks") == [reference]
    assert parse_creditor_references(f"payment {reference.lower()}.") == [reference]


@given(prefixes, st.lists(st.tuples(years, sequences), min_size=2, max_size=30, unique=True))
def test_references_are_unique_within_one_prefix(prefix, numbers):
    references = {creditor_reference(format_invoice_number(prefix, y, s)) for y, s in numbers}
    assert len(references) == len(numbers)


@pytest.mark.parametrize("prefix", ["123456789012", "1234567890123456", "ABCDEFG2027", "X20", "99999999999"])
def test_digit_prefixes_near_the_length_limit_do_not_clash(prefix):
    # numbers that fit next to shortened ones (sequences of 6 to 10 digits) in the same years
    numbers = [format_invoice_number(prefix, y, s) for y in (2020, 2026, 2027)
               for s in (1, 2026, 999999, 1000000, 20260000, 202600001, 2026000001, 2147483647)]
    references = [creditor_reference(n) for n in numbers]
    assert len(set(references)) == len(numbers)


def test_credit_note_numbers_do_not_share_an_invoice_reference():
    assert creditor_reference(format_credit_note_number("DE01", 2026, 1)) != \
        creditor_reference(format_invoice_number("DE01", 2026, 1))


def test_parse_from_messy_remittance_text():
    assert parse_creditor_references("Rechnung RF18 5390 0754 7034 danke") == ["RF18539007547034"]
    assert parse_creditor_references("EREF+RF18539007547034 SVWZ+Miete") == ["RF18539007547034"]
    assert parse_creditor_references("rf18 5390 0754 7034/RF73DE012026000042") == \
        ["RF18539007547034", "RF73DE012026000042"]
    # short words after the groups are not taken into the reference
    assert parse_creditor_references("RF18 5390 0754 7034 bis 31.12.") == ["RF18539007547034"]
    # the same reference twice is one reference
    assert parse_creditor_references("RF18539007547034 RF18 5390 0754 7034") == ["RF18539007547034"]


@pytest.mark.parametrize("text", [
    "RF17 5390 0754 7034",          # wrong check digits
    "RF19539007547034",
    "SURF18539007547034",           # part of a longer word
    "RF18539007547034X",            # runs on into other characters
    "RF1853900754703412345678901",  # longer than 21 characters after the check digits
    "",
    None,
    "Rechnung DE01-2026-000042",    # an invoice number is not a creditor reference
])
def test_parse_rejects_what_is_not_a_valid_reference(text):
    assert parse_creditor_references(text) == []
