"""A credit by amount: lines whose net + VAT give back exactly the amount, or the nearest amounts that can."""
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from app.billing.crediting import CreditSplitError, credit_lines_for_amount
from app.billing.money import compute_invoice

TWO_RATES = {Decimal("19"): Decimal("119.00"), Decimal("7"): Decimal("53.50")}


@given(st.integers(min_value=1, max_value=17250))
def test_every_amount_on_a_two_rate_invoice_is_written_exactly(cents):
    amount = Decimal(cents).scaleb(-2)
    lines = credit_lines_for_amount(amount, TWO_RATES, "EUR", "Credit")
    assert compute_invoice(lines, "EUR").total == amount
    assert {line.vat_rate for line in lines} <= set(TWO_RATES)


@given(st.integers(min_value=1, max_value=5853))
def test_a_single_rate_amount_is_exact_or_refused_with_writable_neighbours(cents):
    amount = Decimal(cents).scaleb(-2)
    left = {Decimal("19.45"): Decimal("58.53")}
    try:
        lines = credit_lines_for_amount(amount, left, "EUR", "Credit")
    except CreditSplitError as error:
        assert "cannot be split exactly" in str(error) and "instead" in str(error)
        return
    assert compute_invoice(lines, "EUR").total == amount


def test_yen_has_no_decimals():
    lines = credit_lines_for_amount(Decimal("1000"), {Decimal("10"): Decimal("5500")}, "JPY", "Credit")
    assert [(line.unit_price, line.vat_rate) for line in lines] == [(Decimal("909"), Decimal("10"))]


def test_an_unwritable_amount_names_the_nearest():
    with pytest.raises(CreditSplitError, match="58,50\xa0€ cannot be split .* at 19,45\xa0% .* credit 58,49\xa0€ or "
                                               "58,51\xa0€ instead"):  # in the legal entity's locale
        credit_lines_for_amount(Decimal("58.50"), {Decimal("19.45"): Decimal("58.53")}, "EUR", "Credit", "de_DE")
