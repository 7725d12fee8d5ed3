"""Bulk actions on the invoice list: the invoices a selection names, and what posting them would do.

A selection is the invoices ticked on the list, or every invoice matching the list's filters
(`InvoiceFilters`, `all=1`). An action first shows its plan — what will happen, and which invoices are
left alone and why — and acts only when a person confirms exactly that plan (app/confirmations.py:
`facts()` is what the Confirm button's token stands for). Posting goes through `post_invoices`, the
same path as posting one draft. Nothing here commits.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.agents.events import subscribers
from app.transactions import transactional
from app.audit import Actor, record
from app.billing.money import round_money
from app.billing.numbering import format_invoice_number
from app.billing.preview import CustomerReach, customer_reach
from app.bulk import for_each_id
from app.errors import NotInEntity
from app.extensions import db
from app.models import Invoice, InvoiceSequence, LegalEntity
from app.records.invoices import InvoiceFilters, invoice_query, post_invoices

SHOWN = 200  # a plan lists this many invoices to act on (and left alone); its figures count them all


class LeftAlone(NamedTuple):
    invoice: Invoice
    reason: str


def selected_invoices(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> list[Invoice]:
    """The invoices of `entity` the selection names, in the list's order. NotInEntity when a ticked id is not
    one of them (another entity's, or none at all): such a request acts on nothing."""
    invoices = list(db.session.scalars(invoice_query(entity, filters, today).options(
        selectinload(Invoice.customer))))
    if filters.ids is not None and len(invoices) != len(filters.ids):
        raise NotInEntity("an invoice of the selection is not one of this legal entity")
    return invoices


def totals_by_currency(invoices: list[Invoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        totals[invoice.currency] += invoice.total_amount
    return {currency: round_money(amount, currency) for currency, amount in sorted(totals.items())}


def not_postable(invoice: Invoice) -> str | None:
    """Why posting leaves this invoice alone (None: it is a draft, it gets a number)."""
    if invoice.status == "draft":
        return None
    shown = f" as {invoice.number}" if invoice.number else ""
    status = invoice.display_status.replace("_", " ") if invoice.status == "issued" else invoice.status
    return f"{status}{shown} already: only a draft can be posted"


@dataclass
class NumberRange:
    year: int
    count: int
    first: str  # the number the first draft gets if nothing else is numbered before the Confirm
    last: str


@dataclass
class PostPlan:
    """What Post does to a selection: which drafts get numbers, their totals, whom it e-mails and debits."""
    entity: LegalEntity
    drafts: list[Invoice]  # in numbering order
    left_alone: list[LeftAlone]
    everything: bool  # all invoices matching the filters (not a ticked selection)
    delivery_on: bool
    collection_on: bool
    reach: CustomerReach = field(default_factory=CustomerReach)
    numbers: list[NumberRange] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Decimal]:
        return totals_by_currency(self.drafts)

    def facts(self) -> dict[str, Any]:
        """What the person confirms: these drafts with these totals (an edit changes them), these left alone."""
        return {"entity": self.entity.code, "action": "post",
                "drafts": [[invoice.id, str(invoice.total_amount), invoice.currency] for invoice in self.drafts],
                "left_alone": sorted(left.invoice.id for left in self.left_alone),
                "customers_emailed": self.reach.emailed, "customers_debited": self.reach.debited}


def post_plan(entity: LegalEntity, filters: InvoiceFilters, today: date | None = None) -> PostPlan:
    """What posting the selection would do now (writes nothing). NotInEntity: see selected_invoices."""
    invoices = selected_invoices(entity, filters, today)
    issued_to = set(subscribers("invoice.issued"))
    plan = PostPlan(entity, [], [], not filters.is_selection, "invoice_delivery" in issued_to,
                    "payment_collection" in issued_to)
    for invoice in invoices:
        reason = not_postable(invoice)
        if reason is None:
            plan.drafts.append(invoice)
        else:
            plan.left_alone.append(LeftAlone(invoice, reason))
    plan.drafts.sort(key=lambda i: (i.issue_date, i.contract_id, i.period_start))  # as post_drafts numbers them
    plan.reach = customer_reach({i.customer_id for i in plan.drafts}, plan.delivery_on, plan.collection_on)
    plan.numbers = _number_ranges(entity, plan.drafts)
    return plan


def _number_ranges(entity: LegalEntity, drafts: list[Invoice]) -> list[NumberRange]:
    per_year: dict[int, int] = defaultdict(int)
    for invoice in drafts:
        per_year[invoice.issue_date.year] += 1
    last = {row.key: row.last_number for row in for_each_id(
        select(InvoiceSequence.last_number).where(InvoiceSequence.legal_entity_id == entity.id,
                                                  InvoiceSequence.series == "invoice"),
        InvoiceSequence.year, sorted(per_year))}
    return [NumberRange(year, count, format_invoice_number(entity.invoice_prefix, year, last.get(year, 0) + 1),
                        format_invoice_number(entity.invoice_prefix, year, last.get(year, 0) + count))
            for year, count in sorted(per_year.items())]


@dataclass
class PostResult:
    posted: list[Invoice]
    left_alone: int


@transactional
def post_selection(plan: PostPlan, actor: Actor) -> PostResult:
    """Post the plan's drafts (one take of the billing lock), and audit that a person confirmed this plan.
    The caller has checked the confirmation against a plan made now."""
    posted = post_invoices(plan.entity, [invoice.id for invoice in plan.drafts], actor)
    record("invoice.bulk_post_confirmed", "legal_entity", plan.entity.id, actor, legal_entity_id=plan.entity.id,
           drafts=len(plan.drafts), posted=len(posted), numbers=[posted[0].number, posted[-1].number] if posted else [],
           totals={currency: str(amount) for currency, amount in plan.totals.items()},
           customers_emailed=plan.reach.emailed, customers_debited=plan.reach.debited,
           left_alone=len(plan.left_alone), everything=plan.everything)
    return PostResult(posted, len(plan.left_alone))
