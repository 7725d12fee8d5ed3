"""How a payment method collects money: one connector per method.

A connector decides what happens when an invoice is issued to a customer paying that way. Adding
a card processor means one new module with a class like these, registered in CONNECTORS (and the
method added to the customers' payment methods).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.errors import FieldError
from app.models import Collection, Customer, Invoice
from app.records.validation import parse_iban


@dataclass(frozen=True)
class CollectionStep:
    status: str  # the collection's new status: waiting | in_batch | failed
    message: str


class Connector(Protocol):
    method: str

    def collect(self, invoice: Invoice, customer: Customer, collection: Collection) -> CollectionStep: ...


class ManualConnector:
    """Never charges: the invoice waits for a payment to be recorded."""

    method = "manual"

    def collect(self, invoice, customer, collection) -> CollectionStep:
        return CollectionStep("waiting", "manual payment: waiting for a payment to be recorded")


class SepaDebitConnector:
    """Adds the invoice to the legal entity's open SEPA direct-debit batch (pain.008)."""

    method = "sepa_debit"

    def collect(self, invoice, customer, collection) -> CollectionStep:
        from app.payments.sepa import add_to_open_batch

        problems = []
        try:
            parse_iban(customer.iban)
        except FieldError as error:
            problems.append(f"IBAN: {error}")
        if not customer.mandate_reference:
            problems.append("the SEPA mandate reference is missing")
        if not customer.mandate_date:
            problems.append("the SEPA mandate date is missing")
        if invoice.currency != "EUR":
            problems.append(f"SEPA direct debit collects EUR only, this invoice is in {invoice.currency}")
        if problems:
            return CollectionStep("failed", f"cannot debit {customer.name}: " + "; ".join(problems))
        item = add_to_open_batch(invoice, collection)
        return CollectionStep("in_batch", f"added to SEPA batch #{item.batch_id} (attempt {item.attempt})")


CONNECTORS: dict[str, Connector] = {c.method: c for c in (ManualConnector(), SepaDebitConnector())}
