"""Which open invoices a bank credit pays: the Reconciliation Agent's rules, pure (no database).

In order, the first rule that finds something decides:
1. **creditor reference**: an ISO 11649 RF reference (the structured field, or one written in the text)
   that is one of the entity's invoices;
2. **invoice number** written in the remittance text (`DE01-2026-000123`, `DE01 2026 123`, `DE012026000123`);
3. **amount and payer**: the payer is one customer (by IBAN, else by name) and the amount is exactly what one
   of its open invoices is due, or all of them together.

Referenced invoices are settled oldest due date first; a short payment leaves the rest due; money beyond
what they are due becomes the customer's credit when every referenced invoice was open and belongs to one
customer, else it waits for an accountant (partially matched). A reference to an invoice that is no longer
open (paid, void, credited) is never guessed around: that money waits, with a note saying why.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from stdnum import iso11649

from app.billing.references import parse_creditor_references
from app.billing.status import is_open_invoice

ZERO = Decimal(0)


@dataclass
class KnownInvoice:
    """An invoice of the entity as the matcher sees it; `amount_due` drops as entries are applied."""

    id: int
    number: str
    customer_id: int
    currency: str
    status: str  # issued, paid, void, credited
    amount_due: Decimal
    due_date: date
    reference: str  # the body of its RF creditor reference (references.reference_body)

    @property
    def open(self) -> bool:
        return is_open_invoice(self.status, self.amount_due)


@dataclass(frozen=True)
class Credit:
    """What the matcher needs of a bank credit entry."""

    amount: Decimal
    currency: str
    creditor_reference: str | None
    remittance: str
    counterparty_name: str | None
    counterparty_iban: str | None


@dataclass(frozen=True)
class Allocation:
    invoice_id: int
    amount: Decimal


@dataclass(frozen=True)
class Match:
    rule: str | None  # creditor_reference, invoice_number, amount_and_payer; None: nothing found
    allocations: tuple[Allocation, ...] = ()
    credit_customer_id: int | None = None  # an over-payment kept as this customer's credit
    credit_amount: Decimal = ZERO
    note: str = ""

    @property
    def applied(self) -> Decimal:
        return sum((a.amount for a in self.allocations), ZERO) + self.credit_amount


LEGAL_FORMS = {"gmbh", "ag", "kg", "ohg", "ug", "mbh", "co", "ev", "sarl", "sas", "sa", "sasu", "eurl", "bv", "nv",
               "ltd", "limited", "plc", "llc", "inc", "corp", "srl", "spa", "sl", "kk", "ab", "as", "oy", "the"}


def normalized_name(name: str | None) -> str:
    """A payer's or customer's name compared without case, accents, punctuation and legal forms."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and w not in LEGAL_FORMS]
    return " ".join(words)


def compact_iban(iban: str | None) -> str:
    return re.sub(r"\s+", "", iban or "").upper()


@dataclass
class Book:
    """The entity's invoices and customers, indexed for matching one statement's credits."""

    invoices: dict[int, KnownInvoice]
    customer_ibans: dict[str, set[int]]  # compact IBAN → customer ids
    customer_names: dict[str, set[int]]  # normalized name → customer ids
    by_reference: dict[str, int] = field(init=False)
    by_number: dict[str, int] = field(init=False)
    open_by_customer: dict[int, list[int]] = field(init=False)
    number_pattern: re.Pattern | None = field(init=False)
    loaded: dict[int, tuple[Decimal, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.loaded = {i.id: (i.amount_due, i.status) for i in self.invoices.values()}
        self.by_reference = {inv.reference: inv.id for inv in self.invoices.values()}
        self.by_number = {inv.number.upper(): inv.id for inv in self.invoices.values()}
        self.open_by_customer = defaultdict(list)
        for inv in sorted(self.invoices.values(), key=lambda i: (i.due_date, i.id)):
            if inv.open:
                self.open_by_customer[inv.customer_id].append(inv.id)
        prefixes = {inv.number.rsplit("-", 2)[0] for inv in self.invoices.values() if inv.number.count("-") >= 2}
        if prefixes:
            alternatives = "|".join(re.escape(p).replace(r"\-", r"[\s\-_/.]*")
                                    for p in sorted(prefixes, key=len, reverse=True))
            self.number_pattern = re.compile(
                rf"(?<![A-Z0-9])({alternatives})[\s\-_/.]*(\d{{4}})[\s\-_/.]*(\d{{1,9}})(?!\d)", re.IGNORECASE)
        else:
            self.number_pattern = None

    def settle(self, invoice_id: int, amount_due: Decimal, status: str) -> None:
        """An invoice as the database now has it (after payments were written): the book and its snapshot agree."""
        invoice = self.invoices.get(invoice_id)
        if invoice is not None:
            invoice.amount_due, invoice.status = Decimal(amount_due), status
            self.loaded[invoice_id] = (Decimal(amount_due), status)

    def as_loaded(self, invoice_id: int) -> tuple[Decimal, str] | None:
        """An invoice's amount due and status when the book was read (to see whether it changed since)."""
        return self.loaded.get(invoice_id)

    # ---------------------------------------------------------------- finding references
    def referenced_by_creditor_reference(self, credit: Credit) -> list[int]:
        found: list[int] = []
        candidates = ([credit.creditor_reference] if credit.creditor_reference else []) + \
            parse_creditor_references(credit.remittance)
        for reference in candidates:
            key = re.sub(r"\s+", "", reference or "").upper()
            if not iso11649.is_valid(key):
                continue
            invoice_id = self.by_reference.get(key[4:])
            if invoice_id is not None and invoice_id not in found:
                found.append(invoice_id)
        return found

    def referenced_by_number(self, credit: Credit) -> list[int]:
        if self.number_pattern is None:
            return []
        found: list[int] = []
        for match in self.number_pattern.finditer(credit.remittance or ""):
            prefix = re.sub(r"[\s_/.]+", "-", match.group(1)).upper()
            prefix = re.sub(r"-+", "-", prefix)
            year, sequence = match.group(2), int(match.group(3))
            for number in (f"{prefix}-{year}-{sequence:06d}", f"{prefix}-{year}-{match.group(3)}"):
                invoice_id = self.by_number.get(number.upper())
                if invoice_id is not None:
                    if invoice_id not in found:
                        found.append(invoice_id)
                    break
        return found

    def payer(self, credit: Credit) -> int | None:
        """The one customer the credit comes from, or None when unknown or ambiguous."""
        by_iban = self.customer_ibans.get(compact_iban(credit.counterparty_iban), set()) \
            if credit.counterparty_iban else set()
        if len(by_iban) == 1:
            return next(iter(by_iban))
        if by_iban:
            return None
        by_name = self.customer_names.get(normalized_name(credit.counterparty_name), set())
        return next(iter(by_name)) if len(by_name) == 1 else None

    # ---------------------------------------------------------------- deciding
    def match(self, credit: Credit, *, match_by_payer: bool = True, overpayment_to_credit: bool = True) -> Match:
        referenced = self.referenced_by_creditor_reference(credit)
        rule = "creditor_reference"
        if not referenced:
            referenced, rule = self.referenced_by_number(credit), "invoice_number"
        if referenced:
            return self._settle(credit, referenced, rule, overpayment_to_credit)
        if match_by_payer:
            return self._by_payer(credit)
        return Match(None, note="no invoice reference in the transfer")

    def _settle(self, credit: Credit, referenced: list[int], rule: str, overpayment_to_credit: bool) -> Match:
        invoices = [self.invoices[i] for i in referenced]
        usable = [i for i in invoices if i.open and i.currency == credit.currency]
        problems = [self._why_not(i, credit.currency) for i in invoices if i not in usable]
        numbers = ", ".join(i.number for i in invoices)
        if not usable:
            return Match(None, note=f"refers to {numbers}: " + "; ".join(problems))
        left = credit.amount
        allocations = []
        for invoice in sorted(usable, key=lambda i: (i.due_date, i.id)):
            take = min(left, invoice.amount_due)
            if take > 0:
                allocations.append(Allocation(invoice.id, take))
                left -= take
        note = f"{_RULE_WORDS[rule]} {numbers}"
        if problems:
            note += "; " + "; ".join(problems)
        if left > 0:
            customers = {i.customer_id for i in usable}
            if overpayment_to_credit and not problems and len(customers) == 1:
                return Match(rule, tuple(allocations), customers.pop(), left,
                             note + f"; {left} {credit.currency} more than due, kept as the customer's credit")
            note += f"; {left} {credit.currency} more than due waits for an accountant"
        elif sum((i.amount_due for i in usable), ZERO) > credit.amount:
            note += "; a short payment: the rest stays due"
        return Match(rule, tuple(allocations), note=note)

    def _by_payer(self, credit: Credit) -> Match:
        customer = self.payer(credit)
        if customer is None:
            return Match(None, note="no invoice reference, and the payer is not one known customer")
        open_ids = [i for i in self.open_by_customer.get(customer, ()) if self.invoices[i].open
                    and self.invoices[i].currency == credit.currency]
        exact = [i for i in open_ids if self.invoices[i].amount_due == credit.amount]
        if len(exact) == 1:
            invoice = self.invoices[exact[0]]
            return Match("amount_and_payer", (Allocation(invoice.id, credit.amount),),
                         note=f"amount and payer: exactly what {invoice.number} is due")
        total = sum((self.invoices[i].amount_due for i in open_ids), ZERO)
        if open_ids and total == credit.amount and not exact:
            return Match("amount_and_payer",
                         tuple(Allocation(i, self.invoices[i].amount_due) for i in open_ids),
                         note="amount and payer: exactly all open invoices "
                              + ", ".join(self.invoices[i].number for i in open_ids))
        if len(exact) > 1:
            return Match(None, note=f"the payer has {len(exact)} open invoices of this amount: which one is it?")
        return Match(None, note="from a known customer, but the amount is not what an open invoice is due")

    def apply(self, match: Match) -> None:
        """Take a decided match into the book, so a later credit of the same statement sees what is left."""
        for allocation in match.allocations:
            invoice = self.invoices[allocation.invoice_id]
            invoice.amount_due -= allocation.amount
            if invoice.amount_due == 0:
                invoice.status = "paid"

    @staticmethod
    def _why_not(invoice: KnownInvoice, currency: str) -> str:
        if invoice.currency != currency:
            return f"{invoice.number} is billed in {invoice.currency}, not {currency}"
        if invoice.status == "issued":
            return f"{invoice.number} has nothing left to pay"
        return f"{invoice.number} is {invoice.status} already"


_RULE_WORDS = {"creditor_reference": "creditor reference of", "invoice_number": "invoice number"}
