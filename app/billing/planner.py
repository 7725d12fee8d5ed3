"""What is owed up to the as-of date, minus what exists: the invoices a contract needs.

Pure: takes a snapshot of a contract and the period starts it already has invoices for, and
returns the invoices to create (one per missing due period, oldest first) or the reason it
cannot be billed. Writing them is someone else's job (app/billing/ledger.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.billing.money import InvoiceAmounts, LineInput, compute_invoice
from app.billing.vat import document_problems
from app.billing.periods import Period, due_period_count, due_periods, period_start, periods_from
from app.billing.requirements import Buyer, Seller, party_problems
from app.errors import CurrencyError, LineError
from app.text import character_name, control_character


@dataclass(frozen=True)
class ContractTerms:
    contract_id: int
    reference: str
    customer_id: int
    currency: str
    frequency: str
    start_date: date
    end_date: date | None
    lines: tuple[LineInput, ...]
    payment_terms_days: int
    seller: Seller | None = None  # None: the parties are not checked (a caller that checked them itself)
    buyer: Buyer | None = None


@dataclass(frozen=True)
class InvoiceDraft:
    contract_id: int
    customer_id: int
    period: Period
    issue_date: date
    due_date: date
    amounts: InvoiceAmounts


@dataclass(frozen=True)
class ContractPlan:
    contract_id: int
    drafts: tuple[InvoiceDraft, ...] = ()
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        return "invoiced" if self.drafts else "not_due"

    def totals(self) -> dict[str, Decimal]:
        """Currency → total of the drafts."""
        result: dict[str, Decimal] = {}
        for draft in self.drafts:
            currency = draft.amounts.currency
            result[currency] = result.get(currency, Decimal(0)) + draft.amounts.total
        return result


def missing_periods(terms: ContractTerms, billed_starts: set[date], as_of: date) -> list[Period]:
    """Due periods without an invoice, oldest first. Cheap when the billed periods are a prefix."""
    due_count = due_period_count(terms.start_date, terms.frequency, as_of, terms.end_date)
    if due_count <= 0:
        return []
    billed = len(billed_starts)
    if billed == 0:
        return periods_from(terms.start_date, terms.frequency, 0, due_count)
    # The usual case: periods 0..billed-1 are invoiced, the rest are new.
    if (
        billed <= due_count
        and min(billed_starts) == terms.start_date
        and max(billed_starts) == period_start(terms.start_date, terms.frequency, billed - 1)
    ):
        return periods_from(terms.start_date, terms.frequency, billed, due_count - billed)
    return [p for p in due_periods(terms.start_date, terms.frequency, as_of, terms.end_date) if p.start not in billed_starts]


def plan_contract(terms: ContractTerms, billed_starts: set[date], as_of: date) -> ContractPlan:
    """The invoices this contract needs as of `as_of`, or why it cannot be billed."""
    try:
        periods = missing_periods(terms, billed_starts, as_of)
    except ValueError as error:
        return ContractPlan(terms.contract_id, error=str(error))
    if not periods:
        return ContractPlan(terms.contract_id)
    unprintable = text_errors(terms)
    if unprintable:
        return ContractPlan(terms.contract_id, error="; ".join(unprintable))
    try:
        amounts = compute_invoice(terms.lines, terms.currency)
    except (LineError, CurrencyError) as error:
        return ContractPlan(terms.contract_id, error=str(error))
    if terms.seller is not None and terms.buyer is not None:
        problems = party_problems(terms.seller, terms.buyer)
        problems += document_problems((line.treatment for line in amounts.lines), seller_vat_id=terms.seller.vat_id,
                                      seller_registration_id=terms.seller.registration_id,
                                      buyer_vat_id=terms.buyer.vat_id)
        if problems:
            return ContractPlan(terms.contract_id, error="; ".join(problems))
    due_date = as_of + timedelta(days=terms.payment_terms_days)
    drafts = tuple(
        InvoiceDraft(terms.contract_id, terms.customer_id, p, as_of, due_date, amounts) for p in periods
    )
    return ContractPlan(terms.contract_id, drafts)


def text_errors(terms: ContractTerms) -> list[str]:
    """Control characters in what the invoice would print (stored before the field rules refused them).

    An invoice with one gets a number but never a document: the e-invoice XML cannot hold it.
    """
    errors = []
    texts = [("contract reference", terms.reference)]
    texts += [(f"line {number}: description", line.description) for number, line in enumerate(terms.lines, start=1)]
    for where, text in texts:
        found = control_character(text or "")
        if found is not None:
            position, character = found
            errors.append(f"{where} contains {character_name(character)} at character {position}, which no "
                          "invoice document can hold: correct it on the contract page, then run again")
    return errors
