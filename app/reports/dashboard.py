"""The dashboard's key figures for one legal entity."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select

from app.extensions import db
from app.billing.money import round_money
from app.delivery.service import delivery_condition
from app.models import BankEntry, BillingRun, Collection, Contract, ContractLine, Invoice, LegalEntity
from app.payments.collection import needs_attention
from app.models.banking import QUEUED


def overdue_condition(today: date):
    """Open (`Invoice.is_open`), and its due date has passed."""
    return and_(Invoice.is_open, Invoice.due_date < today)


# Months per billing period, to bring every contract to a monthly amount (MRR).
PERIODS_PER_MONTH = {"daily": Decimal(365) / 12, "weekly": Decimal(52) / 12, "monthly": Decimal(1),
                     "quarterly": Decimal(1) / 3, "semiannual": Decimal(1) / 6, "annual": Decimal(1) / 12}


@dataclass
class DashboardFigures:
    today: date
    open_by_currency: dict[str, Decimal]
    overdue_by_currency: dict[str, Decimal]
    open_count: int
    overdue_count: int
    last_run: BillingRun | None  # the last run that billed something or went wrong
    next_fire: datetime | None
    bank_credits_waiting: dict[str, tuple[Decimal, int]]
    latest_run: BillingRun | None = None  # a later run that found nothing to bill, if any
    billed_this_month: dict[str, Decimal] = field(default_factory=dict)
    mrr: dict[str, Decimal] = field(default_factory=dict)  # net, of the contracts running today
    undelivered: int = 0  # posted invoices not e-mailed (failed, unknown or still not sent)
    collections_attention: int = 0

    @property
    def arr(self) -> dict[str, Decimal]:
        return {currency: amount * 12 for currency, amount in self.mrr.items()}

    @property
    def bank_credits_count(self) -> int:
        return sum(count for _, count in self.bank_credits_waiting.values())


def dashboard_figures(entity: LegalEntity) -> DashboardFigures:
    today = entity.today()
    overdue = Invoice.due_date < today
    rows = db.session.execute(
        select(
            Invoice.currency,
            func.coalesce(func.sum(Invoice.amount_due), 0),
            func.coalesce(func.sum(case((overdue, Invoice.amount_due), else_=0)), 0),
            func.count(),
            func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
        )
        .where(Invoice.legal_entity_id == entity.id, Invoice.is_open)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    ).all()
    runs = select(BillingRun).where(BillingRun.legal_entity_id == entity.id, BillingRun.dry_run.is_(False)) \
        .order_by(BillingRun.number.desc()).limit(1)
    latest_run = db.session.scalar(runs)
    last_run = latest_run if latest_run is None or _meaningful(latest_run) else db.session.scalar(
        runs.where(or_(BillingRun.invoices_created > 0, BillingRun.status.not_in(("completed", "cancelled")))))
    return DashboardFigures(
        today=today,
        open_by_currency={r[0]: Decimal(r[1]) for r in rows},
        overdue_by_currency={r[0]: Decimal(r[2]) for r in rows if r[2]},
        open_count=sum(r[3] for r in rows),
        overdue_count=sum(int(r[4]) for r in rows),
        last_run=last_run,
        next_fire=next_scheduled_fire(entity),
        bank_credits_waiting=waiting_bank_credits(entity),
        latest_run=latest_run if latest_run is not last_run else None,
        billed_this_month=billed_since(entity, today.replace(day=1), today),
        mrr=monthly_recurring_revenue(entity, today),
        undelivered=db.session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.legal_entity_id == entity.id, delivery_condition("undelivered"))),
        collections_attention=db.session.scalar(select(func.count()).select_from(Collection).join(
            Invoice, Invoice.id == Collection.invoice_id).where(Invoice.legal_entity_id == entity.id,
                                                                  needs_attention())),
    )


def _meaningful(run: BillingRun) -> bool:
    """A run that billed something or did not simply complete (failed, running …), not one that found nothing."""
    return run.invoices_created > 0 or run.status not in ("completed", "cancelled")


def billed_since(entity: LegalEntity, first: date, last: date) -> dict[str, Decimal]:
    """Invoiced per currency (credit notes deducted) with an issue date from `first` to `last`."""
    from app.reports.aging import credit_sales_query

    window = (last - first).days + 1
    return {currency: round_money(Decimal(total), currency)
            for currency, total in db.session.execute(credit_sales_query(entity.id, last, window)) if total}


def monthly_recurring_revenue(entity: LegalEntity, today: date) -> dict[str, Decimal]:
    """Net recurring revenue per month of the contracts running today (active, started, not ended), per currency:
    each contract's lines at their billing frequency brought to a month (an annual 1,200 is 100 a month)."""
    rows = db.session.execute(
        select(Contract.currency, Contract.frequency, func.sum(ContractLine.quantity * ContractLine.unit_price))
        .join(ContractLine, ContractLine.contract_id == Contract.id)
        .where(Contract.legal_entity_id == entity.id, Contract.status == "active", Contract.start_date <= today,
               or_(Contract.end_date.is_(None), Contract.end_date >= today))
        .group_by(Contract.currency, Contract.frequency))
    mrr: dict[str, Decimal] = {}
    for currency, frequency, amount in rows:
        mrr[currency] = mrr.get(currency, Decimal(0)) + Decimal(amount) * PERIODS_PER_MONTH[frequency]
    return {currency: round_money(amount, currency) for currency, amount in sorted(mrr.items())}


def waiting_bank_credits(entity: LegalEntity) -> dict[str, tuple[Decimal, int]]:
    """Currency → (money received and not applied yet, how many credits): the unmatched queue's total."""
    rows = db.session.execute(
        select(BankEntry.currency, func.sum(BankEntry.amount - BankEntry.applied_amount), func.count())
        .where(BankEntry.legal_entity_id == entity.id, BankEntry.status.in_(QUEUED), BankEntry.direction == "credit")
        .group_by(BankEntry.currency))
    return {currency: (round_money(Decimal(total), currency), count) for currency, total, count in rows}


def next_scheduled_fire(entity: LegalEntity) -> datetime | None:
    """The next fire of an enabled schedule of this entity, if schedules exist."""
    try:
        from app.schedules.service import next_fire_for_entity
    except ImportError:
        return None
    return next_fire_for_entity(entity)
