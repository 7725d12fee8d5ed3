"""What an invoice document states, computed once for both the PDF and the e-invoice XML.

Plain functions over a loaded Invoice: its amounts (checked against the stored totals), the
parties' postal addresses, and how the customer pays.
"""
from __future__ import annotations

import re
from decimal import Decimal

from app.addresses import PostalAddress, is_country
from app.billing.money import InvoiceAmounts, LineInput, compute_invoice, round_money
from app.errors import DocumentError
from app.models import Invoice

POSTED_STATUSES = ("issued", "paid", "void", "credited")


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


# ------------------------------------------------------------------ parties
def buyer_address(invoice: Invoice) -> PostalAddress:
    """The customer's address; DocumentError when it lacks what an invoice must state (an invoice
    billed before addresses were structured, whose customer has none yet)."""
    address = invoice.customer.postal_address
    if not address.country or not is_country(address.country):
        raise DocumentError(f"invoice {invoice.number}: customer {invoice.customer.name} has no country in its "
                            "address: fill in the address on the customer's page")
    return address


def is_xrechnung(invoice: Invoice) -> bool:
    """A customer with a buyer reference (BT-10) gets invoices that also meet XRechnung's CIUS."""
    return bool(invoice.customer.buyer_reference)


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
