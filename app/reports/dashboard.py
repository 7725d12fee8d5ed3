"""The dashboard's key figures for one legal entity."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, case, func, select

from app.extensions import db
from app.billing.money import round_money
from app.models import BankEntry, BillingRun, Invoice, LegalEntity
from app.models.banking import QUEUED

OPEN_STATUSES = ("issued",)


def open_condition():
    """An invoice is open when it is issued and something is still due."""
    return and_(Invoice.status.in_(OPEN_STATUSES), Invoice.amount_due > 0)


def overdue_condition(today: date):
    """Open, and its due date has passed."""
    return and_(open_condition(), Invoice.due_date < today)


@dataclass
class DashboardFigures:
    today: date
    open_by_currency: dict[str, Decimal]
    overdue_by_currency: dict[str, Decimal]
    open_count: int
    overdue_count: int
    last_run: BillingRun | None
    next_fire: datetime | None
    bank_credits_waiting: dict[str, tuple[Decimal, int]]

    @property
    def bank_credits_count(self) -> int:
        return sum(count for _, count in self.bank_credits_waiting.values())


def entity_today(entity: LegalEntity, now: datetime | None = None) -> date:
    return entity.today(now)


def dashboard_figures(entity: LegalEntity) -> DashboardFigures:
    today = entity_today(entity)
    overdue = Invoice.due_date < today
    rows = db.session.execute(
        select(
            Invoice.currency,
            func.coalesce(func.sum(Invoice.amount_due), 0),
            func.coalesce(func.sum(case((overdue, Invoice.amount_due), else_=0)), 0),
            func.count(),
            func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
        )
        .where(Invoice.legal_entity_id == entity.id, open_condition())
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    ).all()
    last_run = db.session.scalar(
        select(BillingRun).where(BillingRun.legal_entity_id == entity.id, BillingRun.dry_run.is_(False))
        .order_by(BillingRun.number.desc()).limit(1))
    return DashboardFigures(
        today=today,
        open_by_currency={r[0]: Decimal(r[1]) for r in rows},
        overdue_by_currency={r[0]: Decimal(r[2]) for r in rows if r[2]},
        open_count=sum(r[3] for r in rows),
        overdue_count=sum(int(r[4]) for r in rows),
        last_run=last_run,
        next_fire=next_scheduled_fire(entity),
        bank_credits_waiting=waiting_bank_credits(entity),
    )


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
