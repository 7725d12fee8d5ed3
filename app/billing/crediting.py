"""What a partial credit note by amount consists of: pure arithmetic, no database.

A credit of a gross amount (VAT included) on an invoice with several VAT rates is shared among
the rates about in proportion to what is left to credit at each rate (a cent or two moves between
rates so that every share can be written). Each rate's share becomes one
credit line whose net, with VAT computed on it the way every document computes it (half-up per
rate, EN 16931), gives back exactly that share. Not every gross amount can be written so (at 19 %
a net step of one cent moves the gross by one or two cents); then the credit is refused and the
nearest amounts that can be written are named.
"""
from __future__ import annotations

from decimal import Decimal
from itertools import islice, product

from app.billing.money import LineInput, compute_invoice, minor_unit, round_money
from app.billing.vat import TaxTreatment
from app.errors import CreditSplitError
from app.formatting import format_money, format_percent

# What is left to credit is kept per VAT breakdown: a rate, or (rate, tax treatment) where lines carry
# their tax code's category and reason (a 0 % reverse charge and a 0 % exemption are two breakdowns).
Key = Decimal | tuple[Decimal, TaxTreatment]


def _rate(key: Key) -> Decimal:
    return key if isinstance(key, Decimal) else key[0]


def _tax(key: Key) -> TaxTreatment | None:
    return None if isinstance(key, Decimal) else key[1]


def _order(key: Key) -> tuple:
    tax = _tax(key)
    return _rate(key), tax.category if tax else ""


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def gross_of(net: Decimal, rate: Decimal, currency: str) -> Decimal:
    """Net plus its VAT, rounded half-up as compute_invoice rounds it."""
    return net + round_money(net * rate / 100, currency)


def net_for_gross(gross: Decimal, rate: Decimal, currency: str) -> Decimal | None:
    """The net whose net + VAT is exactly `gross`, or None when no net gives it."""
    quantum = _quantum(currency)
    estimate = round_money(gross * 100 / (100 + rate), currency)
    for net in (estimate, estimate - quantum, estimate + quantum):
        if net > 0 and gross_of(net, rate, currency) == gross:
            return net
    return None


def share_by_rate(amount: Decimal, left_by_rate: dict[Key, Decimal], currency: str) -> dict[Key, Decimal]:
    """`amount` shared among the rates in proportion to the gross left at each; the rounding rest goes to
    the rate with the most left."""
    open_rates = {rate: left for rate, left in left_by_rate.items() if left > 0}
    if not open_rates:
        return {}
    whole = sum(open_rates.values())
    shares = {rate: round_money(amount * left / whole, currency) for rate, left in open_rates.items()}
    largest = max(open_rates, key=lambda key: (open_rates[key], _order(key)))
    shares[largest] += amount - sum(shares.values())
    return {rate: share for rate, share in shares.items() if share > 0}


def _reachable_near(share: Decimal, rate: Decimal, currency: str, count: int = 4) -> list[Decimal]:
    """Up to `count` gross amounts nearest `share` that a net at `rate` gives exactly, nearest first."""
    quantum, found = _quantum(currency), []
    for step in range(0, 50):
        for candidate in ((share,) if step == 0 else (share - step * quantum, share + step * quantum)):
            if candidate > 0 and net_for_gross(candidate, rate, currency) is not None:
                found.append(candidate)
        if len(found) >= count:
            break
    return found[:count]


def _lines(amount: Decimal, left_by_rate: dict[Key, Decimal], currency: str,
           description: str) -> list[LineInput] | None:
    """One line per rate; the smaller rates take a writable share near their proportion, the rate with the
    most left takes the rest, which must be writable too (a few near shares are tried)."""
    shares = share_by_rate(amount, left_by_rate, currency)
    if not shares:
        return None
    largest = max(shares, key=lambda key: (left_by_rate[key], _order(key)))
    others = sorted((key for key in shares if key != largest), key=_order)
    options = [_reachable_near(shares[key], _rate(key), currency) for key in others]
    for combination in islice(product(*options), 256):
        rest = amount - sum(combination)
        net = net_for_gross(rest, _rate(largest), currency) if rest > 0 else None
        if net is None:
            continue
        nets = {key: net_for_gross(share, _rate(key), currency) for key, share in zip(others, combination)}
        nets[largest] = net
        return [LineInput(description, Decimal(1), nets[key], _rate(key), _tax(key)) for key in sorted(nets, key=_order)]
    return None


def credit_lines_for_amount(amount: Decimal, left_by_rate: dict[Key, Decimal], currency: str,
                            description: str, locale: str = "en_US") -> list[LineInput]:
    """One credit line per VAT rate whose total (net + VAT) is exactly `amount`; the refusal speaks of amounts and
    rates as `locale` (the legal entity's) writes them.

    `left_by_rate`: rate (or (rate, tax treatment)) → gross still to credit there. The caller has checked that `amount` is
    positive, has the currency's decimals and is at most what is left.
    """
    lines = _lines(amount, left_by_rate, currency, description)
    if lines is not None:
        assert compute_invoice(lines, currency).total == amount
        return lines
    quantum, left = _quantum(currency), sum(left_by_rate.values())
    near = []
    for step in range(1, 200):
        for candidate in (amount - step * quantum, amount + step * quantum):
            if 0 < candidate <= left and _lines(candidate, left_by_rate, currency, description) is not None:
                near.append(candidate)
        if near:
            break
    rates = " and ".join(format_percent(_rate(key), locale) + (f" {_tax(key).category}" if _tax(key) and
                                                                 _tax(key).category != "S" else "")
                         for key in sorted(left_by_rate, key=_order))
    money = [format_money(n, currency, locale) for n in sorted(near)]
    suggestion = f": credit {' or '.join(money)} instead" if near else ""
    if amount == left:
        suggestion += " (or give no amount to credit the rest of the invoice)"
    raise CreditSplitError(f"{format_money(amount, currency, locale)} cannot be split exactly into a net amount "
                           f"and its VAT at {rates} (VAT is rounded to the {currency} minor unit){suggestion}")
