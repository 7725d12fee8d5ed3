"""Money: ISO 4217 minor units, rounding and EN 16931 invoice arithmetic.

Decimal only: a float anywhere in here is a bug and is refused with TypeError.
Amounts are rounded half-up (away from zero on a tie) to the currency's minor
unit. Invoice totals follow EN 16931: each line net is rounded, VAT is computed
once per rate on the sum of the line nets at that rate (BT-116 x rate, rounded:
BT-117), and the invoice total is net + VAT.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from app.billing.vat import TaxTreatment, code_problems
from app.errors import CurrencyError, LineError

# ISO 4217 List One (published 2026-01-01): active currency codes and the
# number of digits of their minor unit. Withdrawn codes (ANG, BGN, CUC, HRK,
# SLL, ZWL, ...) are not listed.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2, "BOV": 2,
    "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2,
    "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUP": 2,
    "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
    "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0,
    "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2,
    "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2,
    "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2,
    "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2,
    "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2,
    "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2,
    "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2,
    "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
    "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0,
    "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2, "VND": 0,
    "VUV": 0, "WST": 2, "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

# ISO 4217 codes whose minor unit is "N.A.": precious metals, bond-market
# units, SDR, Sucre, ADB unit, the testing code and "no currency".
NO_MINOR_UNIT: frozenset[str] = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)

# Arithmetic that must be exact (products, sums): unlimited precision, and a
# trap on Inexact so that any silent rounding would be an error, not a cent off.
_EXACT = Context(
    prec=MAX_PREC,
    rounding=ROUND_HALF_UP,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
# Rounding to a minor unit: half-up, and no precision limit on the result.
_ROUND = Context(
    prec=MAX_PREC,
    rounding=ROUND_HALF_UP,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def minor_unit(currency: str) -> int:
    """Digits of the currency's minor unit (EUR 2, JPY 0, BHD 3, CLF 4)."""
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a str, not {type(currency).__name__}")
    digits = MINOR_UNITS.get(currency)
    if digits is not None:
        return digits
    if currency in NO_MINOR_UNIT:
        raise CurrencyError(f"currency {currency} has no minor unit")
    raise CurrencyError(f"currency {currency} is not an ISO 4217 currency")


def _quantum(digits: int) -> Decimal:
    return Decimal((0, (1,), -digits))


def _round(amount: Decimal, quantum: Decimal) -> Decimal:
    result = amount.quantize(quantum, context=_ROUND)
    if result.is_zero() and result.is_signed():
        result = result.copy_abs()  # never show "-0.00"
    return result


def _require_decimal(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal):
        shown = f" ({value!r})" if isinstance(value, float) else ""
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}{shown}")
    return value


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the currency's minor unit (JPY 1234.5 -> 1235)."""
    _require_decimal("amount", amount)
    if not amount.is_finite():
        raise ValueError(f"amount must be a finite number, not {amount}")
    return _round(amount, _quantum(minor_unit(currency)))


@dataclass(frozen=True)
class LineInput:
    """One line to bill: ``quantity`` x ``unit_price`` at ``vat_rate`` percent, taxed as ``tax`` says.

    Without ``tax`` (a line from before tax codes) the category is implied by the rate: S, or Z at 0 %.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal | None
    tax: TaxTreatment | None = None

    def __post_init__(self) -> None:
        _check_line_types("LineInput", self)


@dataclass(frozen=True)
class LineAmount:
    """A computed line: ``net`` is quantity x unit_price rounded to the minor unit."""

    position: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    net: Decimal
    treatment: TaxTreatment = TaxTreatment("S")


@dataclass(frozen=True)
class VatSubtotal:
    """VAT breakdown (BG-23) for one category and rate: ``taxable`` (BT-116) and ``tax`` (BT-117)."""

    rate: Decimal
    taxable: Decimal
    tax: Decimal
    treatment: TaxTreatment = TaxTreatment("S")

    @property
    def category(self) -> str:
        return self.treatment.category


@dataclass(frozen=True)
class InvoiceAmounts:
    """Every amount on an invoice; ``vat`` is sorted by rate, then category."""

    currency: str
    lines: tuple[LineAmount, ...]
    vat: tuple[VatSubtotal, ...]
    net: Decimal
    tax: Decimal
    total: Decimal


def _check_line_types(where: str, line: object) -> None:
    """Refuse wrong types (TypeError): these are programming errors, not data errors."""
    description = getattr(line, "description")
    if not isinstance(description, str):
        raise TypeError(f"{where}: description must be a str, not {type(description).__name__}")
    _require_decimal(f"{where}: quantity", getattr(line, "quantity"))
    _require_decimal(f"{where}: unit price", getattr(line, "unit_price"))
    rate = getattr(line, "vat_rate")
    if rate is not None:
        _require_decimal(f"{where}: VAT rate", rate)


def _line_errors(number: int, line: LineInput) -> list[str]:
    """Every data problem on one line, phrased for a person."""
    errors: list[str] = []
    where = f"line {number}"
    if not line.description.strip():
        errors.append(f"{where}: description is empty")
    for label, value in (("quantity", line.quantity), ("unit price", line.unit_price)):
        if not value.is_finite():
            errors.append(f"{where}: {label} is not a finite number ({value})")
        elif value < 0:
            errors.append(f"{where}: {label} is negative ({value})")
    rate = line.vat_rate
    if rate is None:
        errors.append(f"{where}: VAT rate missing")
    elif not rate.is_finite():
        errors.append(f"{where}: VAT rate is not a finite number ({rate})")
    elif rate < 0 or rate > 100:
        errors.append(f"{where}: VAT rate {rate} is outside 0-100")
    elif line.tax is not None:
        problem = code_problems(line.tax.category, rate, line.tax.reason, line.tax.reason_code)
        errors.extend(f"{where}: tax code {line.tax.code or ''}: {text}".replace("code :", "code:")
                      for text in problem.values())
    return errors


def compute_invoice(lines: Sequence[LineInput], currency: str) -> InvoiceAmounts:
    """Line nets, VAT per rate and totals of an invoice, per EN 16931.

    Raises CurrencyError for an unusable currency, LineError listing every bad
    line (1-based), and TypeError for a non-Decimal amount (a float is a bug).
    """
    quantum = _quantum(minor_unit(currency))
    lines = list(lines)
    for number, line in enumerate(lines, start=1):
        _check_line_types(f"line {number}", line)
    if not lines:
        raise LineError(["no lines to bill"])
    errors = [e for number, line in enumerate(lines, start=1) for e in _line_errors(number, line)]
    if errors:
        raise LineError(errors)

    zero = _round(Decimal(0), quantum)
    amounts: list[LineAmount] = []
    # One breakdown per category and rate (BR-CO-17); rates equal in value (19 and 19.00) share one,
    # keyed by the first seen, and so does its exemption reason, which must be the same on every line.
    taxable_by_key: dict[tuple[str, Decimal], Decimal] = {}
    treatment_by_key: dict[tuple[str, Decimal], tuple[int, TaxTreatment]] = {}
    for number, line in enumerate(lines, start=1):
        rate = line.vat_rate
        assert rate is not None  # validated above
        treatment = line.tax or TaxTreatment.implied(rate)
        net = _round(_EXACT.multiply(line.quantity, line.unit_price), quantum)
        amounts.append(
            LineAmount(number, line.description, line.quantity, line.unit_price, rate, net, treatment)
        )
        key = (treatment.category, rate)
        first = treatment_by_key.setdefault(key, (number, treatment))
        if (first[1].reason, first[1].reason_code) != (treatment.reason, treatment.reason_code):
            errors.append(f"line {number}: its tax code {treatment.code} gives category {treatment.category} at "
                          f"{rate}% another exemption reason than line {first[0]} ({first[1].code}): "
                          "one invoice states one reason per category and rate; use one tax code for both")
        taxable_by_key[key] = _EXACT.add(taxable_by_key.get(key, zero), net)
    if errors:
        raise LineError(errors)

    subtotals = tuple(
        VatSubtotal(rate, taxable, _round(_EXACT.multiply(taxable, rate).scaleb(-2, _EXACT), quantum),
                    treatment_by_key[(category, rate)][1])
        for (category, rate), taxable in sorted(taxable_by_key.items(), key=lambda item: (item[0][1], item[0][0]))
    )
    net_total = zero
    for amount in amounts:
        net_total = _EXACT.add(net_total, amount.net)
    tax_total = zero
    for subtotal in subtotals:
        tax_total = _EXACT.add(tax_total, subtotal.tax)
    return InvoiceAmounts(
        currency=currency,
        lines=tuple(amounts),
        vat=subtotals,
        net=net_total,
        tax=tax_total,
        total=_EXACT.add(net_total, tax_total),
    )
