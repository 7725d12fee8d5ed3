"""The header's search: invoices by number, customers by name, e-mail or IBAN, contracts by reference, bank
entries by the payer's IBAN — in the legal entities the user may see, a few of each kind.

An IBAN is matched with its spaces taken out and in capitals ("de89 3704 …" finds DE89370400440532013000);
every other text is "contains", case-insensitive, with LIKE's wildcards taken literally.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import undefer

from app.extensions import db
from app.models import BankEntry, Contract, Customer, Invoice, LegalEntity
from app.records.customers import contains

PER_KIND = 10
MIN_LENGTH = 2
_IBAN_LIKE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{4,}")


@dataclass
class Found:
    kind: str  # "invoice" | "customer" | "contract" | "bank_entry"
    id: int
    entity: str  # the legal entity's code
    title: str
    detail: str = ""  # who / what, in words
    day: date | None = None
    amount: Decimal | None = None
    currency: str = ""
    status: str = ""


@dataclass
class SearchResults:
    text: str
    hits: list[Found] = field(default_factory=list)
    more: set[str] = field(default_factory=set)  # kinds with more than PER_KIND hits
    too_short: bool = False

    def of(self, kind: str) -> list[Found]:
        return [hit for hit in self.hits if hit.kind == kind]


def search(text: str, entity_ids: set[int] | None) -> SearchResults:
    """What `text` finds in the legal entities `entity_ids` (None: all of them)."""
    text = " ".join(text.split())
    results = SearchResults(text)
    if len(text) < MIN_LENGTH:
        results.too_short = bool(text)
        return results
    compact = text.replace(" ", "").upper()
    iban = compact if _IBAN_LIKE.fullmatch(compact) else None

    def scoped(query, model):
        query = query.join(LegalEntity, LegalEntity.id == model.legal_entity_id)
        return query if entity_ids is None else query.where(model.legal_entity_id.in_(entity_ids or {-1}))

    def take(kind: str, rows, make) -> None:
        rows = list(rows)
        if len(rows) > PER_KIND:
            results.more.add(kind)
        results.hits.extend(make(*row) for row in rows[:PER_KIND])

    invoices = scoped(select(Invoice, LegalEntity.code, Customer.name), Invoice) \
        .join(Customer, Customer.id == Invoice.customer_id) \
        .where(contains(Invoice.number, text)) \
        .options(undefer(Invoice.display_status)) \
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(PER_KIND + 1)
    take("invoice", db.session.execute(invoices),
         lambda i, code, name: Found("invoice", i.id, code, i.number, name, i.issue_date, i.total_amount, i.currency,
                                     i.display_status))
    customer_match = [contains(Customer.name, text), contains(Customer.email, text)]
    if iban:
        customer_match.append(Customer.iban == iban)
    customers = scoped(select(Customer, LegalEntity.code), Customer).where(or_(*customer_match)) \
        .order_by(Customer.name).limit(PER_KIND + 1)
    take("customer", db.session.execute(customers),
         lambda c, code: Found("customer", c.id, code, c.name,
                               " · ".join(x for x in (c.email, f"IBAN …{c.iban[-4:]}" if c.iban else None) if x)))
    contracts = scoped(select(Contract, LegalEntity.code, Customer.name), Contract) \
        .join(Customer, Customer.id == Contract.customer_id) \
        .where(contains(Contract.reference, text)).order_by(Contract.reference).limit(PER_KIND + 1)
    take("contract", db.session.execute(contracts),
         lambda c, code, name: Found("contract", c.id, code, c.reference, f"{name} · {c.frequency}", c.start_date,
                                     status=c.status))
    if iban:
        entries = scoped(select(BankEntry, LegalEntity.code), BankEntry) \
            .where(func.upper(BankEntry.counterparty_iban) == iban) \
            .order_by(BankEntry.booking_date.desc(), BankEntry.id.desc()).limit(PER_KIND + 1)
        take("bank_entry", db.session.execute(entries),
             lambda e, code: Found("bank_entry", e.id, code, e.counterparty_name or iban, e.remittance or "",
                                   e.booking_date, e.amount, e.currency, e.status))
    return results
