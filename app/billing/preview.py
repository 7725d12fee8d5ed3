"""A real run's preview: what it would bill as of a date, and whom it would e-mail and debit.

Computed as a dry run computes it (app/billing/chunks.py `plan_contracts`, in chunks of the agent's
chunk_size, over the contracts a run looks at), but in the request and writing nothing, so a person sees
it before anything moves. `facts()` is what a Confirm button's token stands for (app/confirmations.py)
and what the run's audit records as confirmed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.agents.events import subscribers
from app.billing.chunks import plan_contracts
from app.billing.money import round_money
from app.billing.runs import (AsOfCheck, active_run, as_of_check, billable_contract_ids, default_as_of,
                              enabled_agent_settings, failed_contract_ids, refuse_as_of)
from app.bulk import for_each_id
from app.errors import AsOfRefused
from app.models import BillingRun, Contract, Customer, LegalEntity

SHOWN_CONTRACTS = 50  # the preview lists this many contracts to bill (and failures); the figures count all


@dataclass(frozen=True)
class PreviewRow:
    contract_id: int
    reference: str
    customer: str
    invoices: int
    totals: dict[str, Decimal]
    reason: str | None = None


@dataclass
class RunPreview:
    entity: LegalEntity
    as_of: date
    check: AsOfCheck
    auto_post: bool
    delivery_on: bool  # the Invoice Delivery Agent acts on invoice.issued
    collection_on: bool  # the Payment Collection Agent acts on invoice.issued
    contracts_looked_at: int = 0
    contracts_to_bill: int = 0
    invoices: int = 0
    failed: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    customers: int = 0
    customers_emailed: int = 0
    customers_without_email: int = 0
    customers_debited: int = 0
    rows: list[PreviewRow] = field(default_factory=list)
    failures: list[PreviewRow] = field(default_factory=list)
    active: BillingRun | None = None  # a run of the entity already pending or running
    refused: str | None = None  # why a run as of this date cannot start (beyond the cap), in the service's words
    retry_of: BillingRun | None = None  # a preview of Retry failed: only that run's failed contracts

    @property
    def nothing_to_bill(self) -> bool:
        return self.invoices == 0

    @property
    def can_confirm(self) -> bool:
        # A retry whose contracts would all fail again may still be confirmed: it moves no money and records why.
        return (not self.nothing_to_bill or (self.retry_of is not None and self.failed > 0)) \
            and self.refused is None and self.active is None

    @property
    def needs_ahead_tick(self) -> bool:
        """A retry keeps its run's as-of date, asked for when that run was confirmed."""
        return self.check.ahead and self.retry_of is None

    def facts(self) -> dict[str, Any]:
        """What the person confirms: a run of this entity as of this date billing exactly this."""
        return {"entity": self.entity.code, "as_of": self.as_of.isoformat(), "contracts": self.contracts_to_bill,
                "invoices": self.invoices, "failed": self.failed,
                "totals": {currency: str(amount) for currency, amount in sorted(self.totals.items())},
                "customers_emailed": self.customers_emailed, "customers_debited": self.customers_debited,
                "auto_post": self.auto_post, "days_ahead": max(self.check.days_ahead, 0),
                **({"retry_of": self.retry_of.number} if self.retry_of is not None else {})}


def preview_run(entity: LegalEntity, as_of: date | None = None, now: datetime | None = None, *,
                retry_of: BillingRun | None = None) -> RunPreview:
    """What a run of `entity` as of `as_of` (default: the agent's) would do now; with `retry_of`, what
    Retry failed of that run would do (its contracts that failed, as of its date). Writes nothing.

    RunRefused when the agent is disabled. An as-of date beyond the cap is not computed: the preview
    says so (`check.beyond_cap`) and cannot be confirmed."""
    settings = enabled_agent_settings()
    as_of = as_of or default_as_of(entity, settings, now)
    issued_to = set(subscribers("invoice.issued")) if settings["auto_post"] else set()
    preview = RunPreview(entity, as_of, as_of_check(entity, as_of, now), bool(settings["auto_post"]),
                         "invoice_delivery" in issued_to, "payment_collection" in issued_to, retry_of=retry_of)
    preview.active = active_run(entity.id)
    try:
        refuse_as_of(preview.check, explicit=False, ahead_of_time=True)
    except AsOfRefused as refused:
        preview.refused = str(refused)
        return preview
    ids = billable_contract_ids(entity.id, failed_contract_ids(retry_of) if retry_of is not None else None)
    preview.contracts_looked_at = len(ids)
    size = int(settings["chunk_size"])
    customer_ids: set[int] = set()
    shown: list[tuple[int, int, dict[str, Decimal], str | None]] = []  # to bill, then failed: up to 50 each
    failed_shown: list[tuple[int, int, dict[str, Decimal], str | None]] = []
    for start in range(0, len(ids), size):
        for plan in plan_contracts(entity, ids[start:start + size], as_of, int(settings["payment_terms_days"])):
            if plan.error is not None:
                preview.failed += 1
                if len(failed_shown) < SHOWN_CONTRACTS:
                    failed_shown.append((plan.contract_id, 0, {}, plan.error))
            elif plan.drafts:
                preview.contracts_to_bill += 1
                preview.invoices += len(plan.drafts)
                customer_ids.add(plan.drafts[0].customer_id)
                totals = plan.totals()
                for currency, amount in totals.items():
                    preview.totals[currency] = preview.totals.get(currency, Decimal(0)) + amount
                if len(shown) < SHOWN_CONTRACTS:
                    shown.append((plan.contract_id, len(plan.drafts), totals, None))
    preview.totals = {c: round_money(a, c) for c, a in sorted(preview.totals.items())}
    _count_customers(preview, customer_ids)
    _name_rows(preview, shown + failed_shown)
    return preview


@dataclass(frozen=True)
class CustomerReach:
    """Of some customers: how many an issued invoice e-mails, how many lack an address, how many it debits."""
    customers: int = 0
    emailed: int = 0
    without_email: int = 0
    debited: int = 0


def customer_reach(customer_ids: set[int], delivery_on: bool, collection_on: bool) -> CustomerReach:
    """What issuing invoices to these customers sets off: the Invoice Delivery Agent e-mails those with an
    address (when it acts on invoice.issued), the Payment Collection Agent debits those paying by SEPA direct
    debit (when it acts on invoice.issued)."""
    rows = for_each_id(select(Customer.email, Customer.payment_method), Customer.id, sorted(customer_ids))
    with_email = sum(1 for row in rows if (row.email or "").strip())
    return CustomerReach(
        len(customer_ids), with_email if delivery_on else 0, len(customer_ids) - with_email if delivery_on else 0,
        sum(1 for row in rows if row.payment_method == "sepa_debit") if collection_on else 0)


def _count_customers(preview: RunPreview, customer_ids: set[int]) -> None:
    reach = customer_reach(customer_ids, preview.delivery_on, preview.collection_on)
    preview.customers, preview.customers_emailed = reach.customers, reach.emailed
    preview.customers_without_email, preview.customers_debited = reach.without_email, reach.debited


def _name_rows(preview: RunPreview, shown: list[tuple[int, int, dict[str, Decimal], str | None]]) -> None:
    names = {row.key: (row.reference, row.name) for row in for_each_id(
        select(Contract.reference, Customer.name).join(Customer, Customer.id == Contract.customer_id),
        Contract.id, [s[0] for s in shown])}
    for contract_id, invoices, totals, reason in shown:
        reference, customer = names.get(contract_id, (f"#{contract_id}", ""))
        row = PreviewRow(contract_id, reference, customer, invoices, totals, reason)
        (preview.failures if reason else preview.rows).append(row)
