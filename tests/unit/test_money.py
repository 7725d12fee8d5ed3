"""Money: minor units, rounding and EN 16931 invoice arithmetic (pure, no app)."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.billing.money import (
    MINOR_UNITS,
    NO_MINOR_UNIT,
    CurrencyError,
    InvoiceAmounts,
    LineAmount,
    LineError,
    LineInput,
    VatSubtotal,
    compute_invoice,
    minor_unit,
    round_money,
)

D = Decimal


def line(quantity: str, price: str, rate: str | None = "19", description: str = "Service") -> LineInput:
    return LineInput(description, D(quantity), D(price), None if rate is None else D(rate))


# --- currency table -----------------------------------------------------------


def test_minor_units_of_well_known_currencies() -> None:
    expected = {
        "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0,
        "VND": 0, "XAF": 0, "XOF": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
        "LYD": 3, "IQD": 3, "CLF": 4, "UYW": 4,
    }  # fmt: skip
    for code, digits in expected.items():
        assert MINOR_UNITS[code] == digits, code
        assert minor_unit(code) == digits


def test_currency_table_is_well_formed() -> None:
    assert len(MINOR_UNITS) > 150
    for code, digits in MINOR_UNITS.items():
        assert len(code) == 3 and code.isascii() and code.isalpha() and code.isupper(), code
        assert digits in (0, 2, 3, 4), code
    assert NO_MINOR_UNIT == {
        "XTS", "XXX", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA",
    }  # fmt: skip
    assert not NO_MINOR_UNIT & MINOR_UNITS.keys()


def test_currency_table_matches_iso4217_package() -> None:
    import iso4217  # pinned in requirements.txt: its list is the reference
    theirs = {c.code: c.exponent for c in iso4217.Currency}
    assert {c: e for c, e in theirs.items() if e is not None} == MINOR_UNITS, (
        "ISO 4217 list changed: update MINOR_UNITS in app/billing/money.py"
    )
    assert {c for c, e in theirs.items() if e is None} == NO_MINOR_UNIT


def test_minor_unit_errors() -> None:
    with pytest.raises(CurrencyError) as excinfo:
        minor_unit("XTS")
    assert str(excinfo.value) == "currency XTS has no minor unit"
    with pytest.raises(CurrencyError) as excinfo:
        minor_unit("ABC")
    assert str(excinfo.value) == "currency ABC is not an ISO 4217 currency"
    with pytest.raises(CurrencyError):
        minor_unit("eur")  # codes are upper case
    assert issubclass(CurrencyError, ValueError)
    with pytest.raises(TypeError):
        minor_unit(None)  # type: ignore[arg-type]


# --- rounding -------------------------------------------------------------------


def test_round_money_examples() -> None:
    jpy = round_money(D("1234.5"), "JPY")
    assert jpy == D("1235") and jpy.as_tuple().exponent == 0
    assert str(round_money(D("1234.5"), "JPY")) == "1235"
    assert str(round_money(D("2.345"), "EUR")) == "2.35"
    assert str(round_money(D("2.344999"), "EUR")) == "2.34"
    assert str(round_money(D("7"), "EUR")) == "7.00"
    assert str(round_money(D("1.0005"), "BHD")) == "1.001"
    assert str(round_money(D("0.12345"), "CLF")) == "0.1235"
    assert str(round_money(D("-2.345"), "EUR")) == "-2.35"  # half-up is away from zero
    assert str(round_money(D("-0.001"), "EUR")) == "0.00"  # never "-0.00"
    # No precision limit: large amounts are not silently rounded by the context.
    big = D("123456789012345678901234567890.125")
    assert str(round_money(big, "EUR")) == "123456789012345678901234567890.13"


def test_round_money_refuses_floats_and_non_finite() -> None:
    with pytest.raises(TypeError):
        round_money(1.005, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_money(1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        round_money(D("NaN"), "EUR")
    with pytest.raises(ValueError):
        round_money(D("Infinity"), "EUR")
    with pytest.raises(CurrencyError):
        round_money(D("1"), "XAU")


currencies = st.sampled_from(sorted(MINOR_UNITS))


@st.composite
def amounts(draw: st.DrawFn, min_value: str = "-1000000000") -> Decimal:
    places = draw(st.integers(0, 8))
    return draw(
        st.decimals(
            min_value=D(min_value), max_value=D("1000000000"), places=places,
            allow_nan=False, allow_infinity=False,
        )
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(amounts(), currencies)
def test_round_money_properties(amount: Decimal, currency: str) -> None:
    digits = MINOR_UNITS[currency]
    quantum = D(1).scaleb(-digits)
    result = round_money(amount, currency)
    assert result.as_tuple().exponent == -digits
    assert round_money(result, currency) == result
    assert str(round_money(result, currency)) == str(result)
    assert abs(result - amount) <= quantum / 2


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12), currencies)
def test_round_money_ties_go_up_for_positive_amounts(units: int, currency: str) -> None:
    digits = MINOR_UNITS[currency]
    quantum = D(1).scaleb(-digits)
    tie = (D(units) + D("0.5")) * quantum
    assert round_money(tie, currency) == (units + 1) * quantum
    assert round_money(-tie, currency) == -(units + 1) * quantum


# --- invoice arithmetic --------------------------------------------------------------


def test_worked_example_eur() -> None:
    amounts_ = compute_invoice([line("1", "49.00", "19.45")], "EUR")
    assert (str(amounts_.net), str(amounts_.tax), str(amounts_.total)) == ("49.00", "9.53", "58.53")
    assert amounts_ == InvoiceAmounts(
        currency="EUR",
        lines=(LineAmount(1, "Service", D("1"), D("49.00"), D("19.45"), D("49.00")),),
        vat=(VatSubtotal(D("19.45"), D("49.00"), D("9.53")),),
        net=D("49.00"),
        tax=D("9.53"),
        total=D("58.53"),
    )


def test_worked_example_jpy() -> None:
    amounts_ = compute_invoice([line("3", "333.5", "10")], "JPY")
    assert (str(amounts_.net), str(amounts_.tax), str(amounts_.total)) == ("1001", "100", "1101")
    assert amounts_.lines[0].net == D("1001")  # 1000.5 rounds half-up


def test_vat_is_computed_per_rate_not_per_line() -> None:
    # Three lines of 0.10 at 19%: per line 0.019 -> 0.02 each (0.06), per rate 0.057 -> 0.06;
    # ten lines of 0.05 at 7%: per line 0.0035 -> 0.00 each, per rate 0.50 x 7% = 0.035 -> 0.04.
    lines = [line("1", "0.10", "19")] * 3 + [line("1", "0.05", "7")] * 10
    amounts_ = compute_invoice(lines, "EUR")
    assert amounts_.vat == (
        VatSubtotal(D("7"), D("0.50"), D("0.04")),
        VatSubtotal(D("19"), D("0.30"), D("0.06")),
    )
    assert (amounts_.net, amounts_.tax, amounts_.total) == (D("0.80"), D("0.10"), D("0.90"))
    assert [a.position for a in amounts_.lines] == list(range(1, 14))


def test_equal_rates_share_a_subtotal_and_subtotals_are_sorted() -> None:
    amounts_ = compute_invoice(
        [line("1", "10", "19"), line("1", "10", "0"), line("2", "5", "19.00"), line("1", "1", "7")],
        "EUR",
    )
    assert [v.rate for v in amounts_.vat] == [D("0"), D("7"), D("19")]
    assert amounts_.vat[2] == VatSubtotal(D("19"), D("20.00"), D("3.80"))
    assert amounts_.tax == D("3.87")


def test_products_are_exact_before_rounding() -> None:
    # 31 significant digits: Python's default 28-digit context would first round this
    # to 0.005 and then half-up to 0.01 (double rounding); exact arithmetic gives 0.00.
    amounts_ = compute_invoice([line("0.0049999999999999999999999999999999", "1", "0")], "EUR")
    assert amounts_.net == D("0.00")
    amounts_ = compute_invoice([line("1234567890.123456789", "9876543210.987654321", "0")], "EUR")
    assert str(amounts_.net) == "12193263113702179522.37"


def test_zero_quantity_and_zero_rate_are_fine() -> None:
    amounts_ = compute_invoice([line("0", "99.99", "19"), line("2", "0", "0")], "EUR")
    assert (str(amounts_.net), str(amounts_.tax), str(amounts_.total)) == ("0.00", "0.00", "0.00")


def test_every_problem_is_reported() -> None:
    bad = [
        line("-1", "10.00", "19"),
        line("1", "10.00", None),
        line("1", "-5.00", "19"),
        line("1", "10.00", "120"),
        line("1", "10.00", "19"),
        line("-2", "-1", "-3", description="  "),
        line("NaN", "1", "19"),
    ]
    with pytest.raises(LineError) as excinfo:
        compute_invoice(bad, "EUR")
    assert excinfo.value.errors == [
        "line 1: quantity is negative (-1)",
        "line 2: VAT rate missing",
        "line 3: unit price is negative (-5.00)",
        "line 4: VAT rate 120 is outside 0-100",
        "line 6: description is empty",
        "line 6: quantity is negative (-2)",
        "line 6: unit price is negative (-1)",
        "line 6: VAT rate -3 is outside 0-100",
        "line 7: quantity is not a finite number (NaN)",
    ]
    assert str(excinfo.value) == "; ".join(excinfo.value.errors)
    assert isinstance(excinfo.value, ValueError)


def test_no_lines() -> None:
    with pytest.raises(LineError) as excinfo:
        compute_invoice([], "EUR")
    assert excinfo.value.errors == ["no lines to bill"]
    assert str(excinfo.value) == "no lines to bill"


def test_currency_problems() -> None:
    with pytest.raises(CurrencyError, match="currency XXX has no minor unit"):
        compute_invoice([line("1", "1")], "XXX")
    with pytest.raises(CurrencyError, match="currency EURO is not an ISO 4217 currency"):
        compute_invoice([line("1", "1")], "EURO")


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        LineInput("x", 1.0, D("1"), D("19"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LineInput("x", D("1"), 9.99, D("19"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LineInput("x", D("1"), D("9.99"), 19.0)  # type: ignore[arg-type]
    # Something line-shaped that skipped LineInput's own check is refused as well.
    sneaky = SimpleNamespace(description="x", quantity=D("1"), unit_price=9.99, vat_rate=D("19"))
    with pytest.raises(TypeError):
        compute_invoice([sneaky], "EUR")  # type: ignore[list-item]


# --- invoice properties ------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10000, places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=100000, places=4, allow_nan=False, allow_infinity=False)
rates = st.one_of(
    st.sampled_from([D("0"), D("5"), D("7"), D("10"), D("19"), D("20"), D("21"), D("19.45")]),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False),
)
good_lines = st.builds(LineInput, st.just("Item"), quantities, prices, rates)
positive_quantities = st.decimals(min_value=D("0.001"), max_value=10000, places=3)
positive_prices = st.decimals(min_value=D("0.0001"), max_value=100000, places=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(good_lines, min_size=1, max_size=12), currencies)
def test_invoice_invariants(lines: list[LineInput], currency: str) -> None:
    result = compute_invoice(lines, currency)
    exponent = -MINOR_UNITS[currency]
    assert result.currency == currency
    assert len(result.lines) == len(lines)
    for position, (amount, given_line) in enumerate(zip(result.lines, lines), start=1):
        assert amount.position == position
        assert amount.net == round_money(given_line.quantity * given_line.unit_price, currency)
        assert amount.net.as_tuple().exponent == exponent
    assert result.net == sum((a.net for a in result.lines), D(0))
    assert result.tax == sum((v.tax for v in result.vat), D(0))
    assert result.total == result.net + result.tax
    rates_ = [v.rate for v in result.vat]
    assert rates_ == sorted(rates_) and len(set(rates_)) == len(rates_)
    for subtotal in result.vat:
        taxable = sum((a.net for a in result.lines if a.vat_rate == subtotal.rate), D(0))
        assert subtotal.taxable == taxable
        assert subtotal.tax == round_money(taxable * subtotal.rate / 100, currency)
    money = [result.net, result.tax, result.total]
    money += [v.taxable for v in result.vat] + [v.tax for v in result.vat]
    for value in money:
        assert value.as_tuple().exponent == exponent, value
        assert value >= 0


@st.composite
def lines_with_problems(draw: st.DrawFn) -> tuple[list[LineInput], list[str]]:
    lines: list[LineInput] = []
    expected: list[str] = []
    for number in range(1, draw(st.integers(1, 8)) + 1):
        quantity, price, rate = draw(quantities), draw(prices), draw(rates)
        rate_or_none: Decimal | None = rate
        if draw(st.booleans()):
            quantity = -draw(positive_quantities)
            expected.append(f"line {number}: quantity is negative ({quantity})")
        if draw(st.booleans()):
            price = -draw(positive_prices)
            expected.append(f"line {number}: unit price is negative ({price})")
        choice = draw(st.sampled_from(["ok", "missing", "high", "low"]))
        if choice == "missing":
            rate_or_none = None
            expected.append(f"line {number}: VAT rate missing")
        elif choice in ("high", "low"):
            off = draw(st.decimals(min_value=D("0.01"), max_value=1000, places=2))
            rate_or_none = D(100) + off if choice == "high" else -off
            expected.append(f"line {number}: VAT rate {rate_or_none} is outside 0-100")
        lines.append(LineInput("Item", quantity, price, rate_or_none))
    return lines, expected


@settings(max_examples=200, deadline=None)
@given(lines_with_problems(), currencies)
def test_errors_list_every_bad_line(case: tuple[list[LineInput], list[str]], currency: str) -> None:
    lines, expected = case
    if not expected:
        compute_invoice(lines, currency)
        return
    with pytest.raises(LineError) as excinfo:
        compute_invoice(lines, currency)
    assert excinfo.value.errors == expected
