"""What an invoice document states, computed once for both the PDF and the e-invoice XML.

Plain functions over a loaded Invoice: its amounts (checked against the stored totals), the
postal addresses split into EN 16931 fields, and how the customer pays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from app.billing.money import InvoiceAmounts, LineInput, compute_invoice, round_money
from app.models import Invoice

POSTED_STATUSES = ("issued", "paid", "void", "credited")


class DocumentError(ValueError):
    """An invoice that cannot be turned into a document; the message says what to fix."""


# ------------------------------------------------------------------ amounts
def checked_amounts(invoice: Invoice) -> InvoiceAmounts:
    """Line nets, VAT per rate and totals, recomputed from the lines and equal to what is stored.

    The e-invoice must add up (EN 16931 BR-CO-10/14/15) and state the invoice as booked: a
    difference is a data problem the document must not hide.
    """
    if not invoice.lines:
        raise DocumentError(f"invoice {invoice.number or invoice.id} has no lines")
    amounts = compute_invoice(line_inputs(invoice), invoice.currency)
    stored = tuple(round_money(Decimal(v), invoice.currency)
                   for v in (invoice.net_amount, invoice.tax_amount, invoice.total_amount))
    if (amounts.net, amounts.tax, amounts.total) != stored:
        raise DocumentError(
            f"invoice {invoice.number}: its lines add up to net {amounts.net}, VAT {amounts.tax}, total "
            f"{amounts.total} but the invoice says {stored[0]}, {stored[1]}, {stored[2]}; correct the invoice first")
    for line, computed in zip(invoice.lines, amounts.lines):
        if round_money(Decimal(line.net_amount), invoice.currency) != computed.net:
            raise DocumentError(f"invoice {invoice.number}, line {line.position}: net {line.net_amount} is not "
                                f"quantity x unit price ({computed.net}); correct the invoice first")
    return amounts


def line_inputs(invoice: Invoice) -> list[LineInput]:
    """The invoice's lines as billing computes them: with the tax treatment each was issued with."""
    return [LineInput(line.description, line.quantity, line.unit_price, line.vat_rate, line.treatment)
            for line in invoice.lines]


# ------------------------------------------------------------------ addresses
@dataclass(frozen=True)
class PostalAddress:
    lines: tuple[str, ...]  # street lines, at most three (BT-35/36/162)
    postcode: str | None
    city: str | None
    country: str  # ISO 3166-1 alpha-2


_POSTCODE_CITY = re.compile(r"^(?:[A-Z]{1,2}-)?(\d{4,5}|\d{3} ?\d{2}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})\s+(.+)$")
_CITY_POSTCODE = re.compile(r"^(.+?),?\s+([A-Z]{2}\s+)?(\d{5}(?:-\d{4})?)$")  # "Springfield, IL 62704"


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country names in the languages addresses are written in, lower-cased → ISO code."""
    from babel import Locale

    names: dict[str, str] = {}
    for language in ("en", "de", "fr", "es", "it", "nl"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha() and not _NOT_ISO_3166.fullmatch(code):
                names.setdefault(name.lower(), code)
    return names


# CLDR territories that are not ISO 3166-1 countries: user-assigned codes (AA, QM-QZ, XA-XZ, ZZ),
# exceptionally reserved ones (AC, CP, CQ, DG, EA, IC, TA) and groupings (EU, EZ, UN).
_NOT_ISO_3166 = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ|AC|CP|CQ|DG|EA|IC|TA|EU|EZ|UN")


def is_country(code: str | None) -> bool:
    """An ISO 3166-1 alpha-2 code (as Babel knows them)."""
    return bool(code) and code in _country_names().values()


def parse_address(text: str | None, default_country: str) -> PostalAddress:
    """Split a free-text address into EN 16931 fields.

    The last line is taken as the country when it names one (Germany, Deutschland, FR...);
    otherwise the country is `default_country`. A "10117 Berlin" line gives postcode and city.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    country = default_country
    if lines:
        last = lines[-1].rstrip(".")
        named = _country_names().get(last.lower())
        if named is None and re.fullmatch(r"[A-Z]{2}", last) and is_country(last):
            named = last
        if named is not None:
            country = named
            lines.pop()
    postcode = city = None
    for index in range(len(lines) - 1, -1, -1):
        match = _POSTCODE_CITY.match(lines[index])
        if match:
            postcode, city = match.group(1), match.group(2)
        else:
            match = _CITY_POSTCODE.match(lines[index])
            if match:
                city, postcode = match.group(1), match.group(3)
        if match:
            del lines[index]
            break
    if city is None and len(lines) > 1:
        city = lines.pop()
    if len(lines) > 3:
        lines = lines[:2] + [", ".join(lines[2:])]
    return PostalAddress(tuple(lines), postcode, city, country)


def address_lines(text: str | None) -> list[str]:
    """The address as printed: its non-empty lines."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# ------------------------------------------------------------------ payment
def payment_kind(invoice: Invoice) -> str:
    """'debit' (SEPA direct debit), 'transfer' (to the entity's IBAN), 'other' (no account known), or
    'credit' (a credit note: nothing is to be paid)."""
    if invoice.kind == "credit_note":
        return "credit"
    if invoice.customer.payment_method == "sepa_debit":
        return "debit"
    if invoice.legal_entity.iban:
        return "transfer"
    return "other"


def compact_iban(iban: str | None) -> str | None:
    return re.sub(r"\s+", "", iban).upper() if iban else None


def group_iban(iban: str | None) -> str | None:
    """DE89370400440532013000 → DE89 3704 0044 0532 0130 00 (as printed)."""
    iban = compact_iban(iban)
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if iban else None


def mask_iban(iban: str | None) -> str | None:
    """Only the country, check digits and the last four characters: DE89 **** **** **** **30 00."""
    iban = compact_iban(iban)
    if not iban:
        return None
    if len(iban) <= 8:
        return group_iban(iban)
    return group_iban(iban[:4] + "*" * (len(iban) - 8) + iban[-4:])
