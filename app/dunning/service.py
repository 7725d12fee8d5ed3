"""Dunning: who gets which reminder (the plan, also the preview), writing the reminders, sending them.

`plan(entity, as_of)` reads and decides, writing nothing: the preview page, `flask dunning preview` and a test
run of the Dunning Agent show it. `run(entity, as_of, actor)` writes the plan's reminders in one transaction (with
their audit entries), commits, and then enqueues one e-mail job per reminder (`send_notice`). Each invoice gets
each level once (unique (invoice, level)) and each customer one reminder per day and currency, so a second run on
the same day writes and sends nothing new.

Never reminded: drafts, paid, credited or voided invoices and those with nothing due (the one definition of an
overdue invoice, app/reports/dashboard.py), an invoice marked disputed, a customer on hold (paused or disputed),
and an invoice of a SEPA direct-debit customer whose collection is still in progress (in a batch, or a retry
scheduled). A customer without an e-mail address is reported, and the others are reminded.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.agents.settings import agent_settings
from app.audit import Actor, record
from app.billing.money import round_money
from app.billing.references import format_creditor_reference
from app.delivery.mail import MailError, build_message, send
from app.documents.facts import group_iban
from app.dunning.levels import (days_past_due, fee_for, next_level, notice_totals, parse_level_days,
                                parse_level_fees, statutory_interest)
from app.dunning.texts import body_for, language_of, level_title, setting_name
from app.errors import DunningRefused
from app.extensions import db
from app.formatting import format_money
from app.locale_input import input_date
from app.models import Collection, Customer, DunningNotice, DunningNoticeItem, Invoice, LegalEntity
from app.models.types import utcnow
from app.queues import DUNNING_NOTICE_JOB, REDIS_DOWN, launch_task
from app.reports.dashboard import overdue_condition

log = logging.getLogger(__name__)
AGENT = Actor.system("Dunning Agent")
# A SEPA collection in these states is still under way: its invoice is not reminded.
COLLECTION_IN_PROGRESS = ("in_batch", "retry_scheduled")
# Days the customer is given to pay after the reminder's date.
PAY_WITHIN_DAYS = 7


def settings() -> dict:
    return agent_settings("dunning")


# ------------------------------------------------------------------ the plan (also the preview)
@dataclass
class PlannedItem:
    invoice: Invoice
    days_past_due: int
    level: int
    interest: Decimal

    def as_dict(self) -> dict:
        return {"number": self.invoice.number, "due_date": self.invoice.due_date, "days_past_due": self.days_past_due,
                "amount_due": round_money(self.invoice.amount_due, self.invoice.currency), "level": self.level, "interest": self.interest}


@dataclass
class PlannedNotice:
    customer: Customer
    currency: str
    level: int
    items: list[PlannedItem]
    open_amount: Decimal
    fee: Decimal
    interest: Decimal
    problem: str | None = None  # why it cannot be sent (no e-mail address)

    @property
    def total(self) -> Decimal:
        return self.open_amount + self.fee + self.interest

    def as_dict(self) -> dict:
        return {"customer": self.customer.name, "customer_id": self.customer.id, "email": self.customer.email,
                "currency": self.currency, "level": self.level,
                "invoices": [item.as_dict() for item in self.items], "amount_due": self.open_amount,
                "fee": self.fee, "interest": self.interest, "total": self.total, "problem": self.problem}


@dataclass
class Excluded:
    customer: Customer
    invoice: Invoice
    reason: str

    def as_dict(self) -> dict:
        return {"customer": self.customer.name, "number": self.invoice.number, "reason": self.reason}


@dataclass
class Plan:
    entity: LegalEntity
    as_of: date
    notices: list[PlannedNotice] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)

    @property
    def sendable(self) -> list[PlannedNotice]:
        return [n for n in self.notices if n.problem is None]

    @property
    def problems(self) -> list[PlannedNotice]:
        return [n for n in self.notices if n.problem is not None]

    def summary(self) -> str:
        levels = defaultdict(int)
        for notice in self.sendable:
            levels[notice.level] += 1
        by_level = ", ".join(f"{count} at level {level}" for level, count in sorted(levels.items()))
        text = f"{len(self.sendable)} reminder(s) due on {self.as_of.isoformat()}" + (f" ({by_level})" if by_level else "")
        if self.problems:
            text += f"; {len(self.problems)} customer(s) cannot be reminded: " + "; ".join(
                f"{n.customer.name}: {n.problem}" for n in self.problems)
        if self.excluded:
            text += f"; {len(self.excluded)} overdue invoice(s) held back"
        return text

    def as_dict(self) -> dict:
        return {"entity": self.entity.code, "as_of": self.as_of, "reminders": [n.as_dict() for n in self.notices],
                "excluded": [e.as_dict() for e in self.excluded]}


def _exclusion(invoice: Invoice, customer: Customer, collection_status: str | None) -> str | None:
    if customer.dunning_hold:
        return f"customer on hold ({customer.dunning_hold})"
    if invoice.disputed:
        return "invoice disputed"
    if customer.payment_method == "sepa_debit" and collection_status in COLLECTION_IN_PROGRESS:
        return "SEPA direct debit in collection"
    return None


def _last_levels(invoice_ids: list[int]) -> dict[int, tuple[int, date]]:
    """Invoice id → (highest level sent, the day of that reminder)."""
    if not invoice_ids:
        return {}
    rows = db.session.execute(
        select(DunningNoticeItem.invoice_id, DunningNoticeItem.level, DunningNotice.as_of)
        .join(DunningNotice, DunningNotice.id == DunningNoticeItem.notice_id)
        .where(DunningNoticeItem.invoice_id.in_(invoice_ids)))
    last: dict[int, tuple[int, date]] = {}
    for invoice_id, level, as_of in rows:
        if invoice_id not in last or level > last[invoice_id][0]:
            last[invoice_id] = (level, as_of)
    return last


def plan(entity: LegalEntity, as_of: date, configuration: dict | None = None) -> Plan:
    """Who gets which reminder on `as_of`; writes nothing."""
    config = configuration or settings()
    level_days, fees = parse_level_days(config["levels"]), parse_level_fees(config["fees"])
    rows = db.session.execute(
        select(Invoice, Collection.status)
        .outerjoin(Collection, Collection.invoice_id == Invoice.id)
        .options(joinedload(Invoice.customer))
        .where(Invoice.legal_entity_id == entity.id, Invoice.kind == "invoice", overdue_condition(as_of))
        .order_by(Invoice.customer_id, Invoice.due_date, Invoice.id)).all()
    last = _last_levels([invoice.id for invoice, _ in rows])
    result = Plan(entity, as_of)
    grouped: dict[tuple[int, str], list[PlannedItem]] = defaultdict(list)
    customers: dict[int, Customer] = {}
    for invoice, collection_status in rows:
        customer = invoice.customer
        reason = _exclusion(invoice, customer, collection_status)
        if reason is not None:
            result.excluded.append(Excluded(customer, invoice, reason))
            continue
        overdue = days_past_due(invoice.due_date, as_of)
        last_level, last_day = last.get(invoice.id, (0, None))
        level = next_level(overdue, level_days, last_level, (as_of - last_day).days if last_day else None)
        if level is None:
            continue
        interest = statutory_interest(invoice.amount_due, entity.late_interest_rate, overdue, invoice.currency)
        grouped[(customer.id, invoice.currency)].append(PlannedItem(invoice, overdue, level, interest))
        customers[customer.id] = customer
    for (customer_id, currency), items in grouped.items():
        customer = customers[customer_id]
        level = max(item.level for item in items)
        totals = notice_totals([i.invoice.amount_due for i in items], [i.interest for i in items],
                               fee_for(level, fees), currency)
        problem = None if customer.email else "no e-mail address: add one on the customer page"
        result.notices.append(PlannedNotice(customer, currency, level, items, totals.open_amount, totals.fee,
                                            totals.interest, problem))
    result.notices.sort(key=lambda n: (n.customer.name, n.currency))
    return result


# ------------------------------------------------------------------ writing the reminders
@dataclass
class RunResult:
    plan: Plan
    written: list[DunningNotice] = field(default_factory=list)
    retried: list[DunningNotice] = field(default_factory=list)  # queued or failed before: enqueued again
    collided: int = 0  # written meanwhile by another run

    def summary(self) -> str:
        text = f"{len(self.written)} reminder(s) queued for {self.plan.as_of.isoformat()}"
        if self.retried:
            text += f", {len(self.retried)} earlier one(s) sent again"
        if self.plan.problems:
            text += "; not reminded: " + "; ".join(f"{n.customer.name}: {n.problem}" for n in self.plan.problems)
        if self.plan.excluded:
            text += f"; {len(self.plan.excluded)} overdue invoice(s) held back"
        return text

    def as_dict(self) -> dict:
        return {"entity": self.plan.entity.code, "as_of": self.plan.as_of,
                "queued": [_notice_dict(n) for n in self.written], "retried": [_notice_dict(n) for n in self.retried],
                "not_reminded": [{"customer": n.customer.name, "problem": n.problem} for n in self.plan.problems],
                "excluded": [e.as_dict() for e in self.plan.excluded]}


def _notice_dict(notice: DunningNotice) -> dict:
    return {"id": notice.id, "customer": notice.customer.name, "email": notice.email, "level": notice.level,
            "currency": notice.currency, "invoices": [item.invoice.number for item in notice.items],
            **{key: round_money(amount, notice.currency) for key, amount in (
                ("amount_due", notice.open_amount), ("fee", notice.fee), ("interest", notice.interest),
                ("total", notice.total_amount))}, "status": notice.status}


def _write(entity: LegalEntity, planned: PlannedNotice, as_of: date, actor: Actor,
           agent_run_id: int | None) -> DunningNotice | None:
    """One reminder and its items in a savepoint; None when another run wrote it meanwhile."""
    savepoint = db.session.begin_nested()
    try:
        notice = DunningNotice(legal_entity_id=entity.id, customer_id=planned.customer.id, level=planned.level,
                               as_of=as_of, currency=planned.currency, open_amount=planned.open_amount,
                               fee=planned.fee, interest=planned.interest, total_amount=planned.total,
                               status="queued", email=planned.customer.email, agent_run_id=agent_run_id)
        notice.items = [DunningNoticeItem(invoice_id=item.invoice.id, level=item.level,
                                          days_past_due=item.days_past_due, open_amount=item.invoice.amount_due,
                                          interest=item.interest) for item in planned.items]
        db.session.add(notice)
        db.session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        return None
    numbers = [item.invoice.number for item in planned.items]
    record("dunning.reminder_queued", "customer", planned.customer.id, actor, legal_entity_id=entity.id,
           notice_id=notice.id, level=notice.level, as_of=as_of.isoformat(), invoices=numbers,
           total=str(notice.total_amount), currency=notice.currency, agent_run_id=agent_run_id)
    for item in planned.items:
        record("dunning.invoice_reminded", "invoice", item.invoice.id, actor, legal_entity_id=entity.id,
               notice_id=notice.id, level=item.level, days_past_due=item.days_past_due)
    return notice


def run(entity: LegalEntity, as_of: date, actor: Actor, *, agent_run_id: int | None = None,
        configuration: dict | None = None, enqueue: bool = True) -> RunResult:
    """Write the day's reminders, commit, then enqueue their e-mails (and again those of earlier reminders still
    queued or failed). `enqueue=False`: the caller sends them (`send_pending`). A date after today in the entity's
    time zone is refused (DunningRefused): it would remind customers of invoices not that late yet."""
    today = entity.today()
    if as_of > today:
        raise DunningRefused(f"{as_of.isoformat()} is after today ({today.isoformat()} in {entity.timezone}): "
                             "reminders are sent for days that have come; preview a later date instead")
    result = RunResult(plan(entity, as_of, configuration))
    for planned in result.plan.sendable:
        notice = _write(entity, planned, as_of, actor, agent_run_id)
        if notice is None:
            result.collided += 1
        else:
            result.written.append(notice)
    written_ids = {n.id for n in result.written}
    result.retried = [n for n in db.session.scalars(
        select(DunningNotice).where(DunningNotice.legal_entity_id == entity.id,
                                    DunningNotice.status.in_(("queued", "failed"))).order_by(DunningNotice.id))
        if n.id not in written_ids]
    db.session.commit()
    if enqueue:
        enqueue_notices(result.written + result.retried)
    return result


def enqueue_notices(notices: list[DunningNotice]) -> None:
    """One e-mail job per reminder on the delivery queue; with Redis down they stay queued for the next run."""
    try:
        for notice in notices:
            launch_task(DUNNING_NOTICE_JOB, notice.id, job_id=f"dunning-notice-{notice.id}",
                        description=f"dunning notice {notice.id}")
    except REDIS_DOWN:
        log.warning("dunning: Redis is not reachable; %d reminder(s) stay queued for the next run", len(notices))


def send_pending(notices: list[DunningNotice]) -> list[str]:
    """Send in this process (`flask dunning run --inline`, tests); the status of each."""
    return [send_notice(notice_id) for notice_id in [n.id for n in notices]]


# ------------------------------------------------------------------ sending one reminder
def mail_texts(notice: DunningNotice, configuration: dict | None = None) -> tuple[str, str]:
    """The reminder's subject and text, in the entity's language."""
    config = configuration or settings()
    entity, customer = notice.legal_entity, notice.customer
    language, locale = language_of(entity.locale), entity.locale or "en_US"

    def money(amount: Decimal) -> str:
        return format_money(amount, notice.currency, locale)

    lines = []
    for item in notice.items:
        reference = format_creditor_reference(item.invoice.creditor_reference) if item.invoice.creditor_reference else ""
        lines.append(f"- {item.invoice.number}, {input_date(item.invoice.due_date, locale)}: "
                     f"{money(item.open_amount)}" + (f" ({reference})" if reference else ""))
    values = {
        "customer_name": customer.name, "entity_name": entity.name,
        "title": level_title(config[setting_name("titles", language)], notice.level), "level": notice.level,
        "invoices": "\n".join(lines), "open_amount": money(notice.open_amount), "fee": money(notice.fee),
        "interest": money(notice.interest), "total": money(notice.total_amount),
        "as_of": input_date(notice.as_of, locale),
        "pay_by": input_date(notice.as_of + timedelta(days=PAY_WITHIN_DAYS), locale),
        "iban": group_iban(entity.iban) or "", "bic": entity.bic or "",
    }
    subject = config[setting_name("subject", language)].format(**values)
    return subject, body_for(config, language, notice.level).format(**values)


def notice_filename(notice: DunningNotice) -> str:
    return f"Reminder-{notice.number}.pdf"


def send_notice(notice_id: int) -> str:
    """E-mail one reminder with its PDF, at most once: claimed (status `sending`, committed) before the SMTP
    hand-over. A refusal leaves it `failed` with the reason (the next run tries again); a reminder already sent,
    or being sent, is left alone."""
    notice = db.session.get(DunningNotice, notice_id)
    if notice is None or notice.status not in ("queued", "failed"):
        return notice.status if notice is not None else "missing"
    try:
        from app.dunning.document import render_notice_pdf  # WeasyPrint: loaded by the sender, not every command

        subject, body = mail_texts(notice)
        pdf = render_notice_pdf(notice)
        message = build_message(notice.email, subject, body, message_id=f"<dunning-{notice.id}@arbill>",
                                attachments=[(notice_filename(notice), "application/pdf", pdf)])
    except Exception as error:  # noqa: BLE001 — a template or document error: recorded, a person acts
        db.session.rollback()
        log.exception("dunning notice %s could not be prepared", notice_id)
        return _finish(notice_id, "failed", f"could not be prepared: {type(error).__name__}: {error}")
    claimed = db.session.scalar(select(DunningNotice).where(DunningNotice.id == notice_id).with_for_update())
    if claimed.status not in ("queued", "failed"):
        db.session.commit()
        return claimed.status
    claimed.status = "sending"
    db.session.commit()
    try:
        send(message)
    except MailError as error:
        return _finish(notice_id, "failed", str(error))
    return _finish(notice_id, "sent", None)


def _finish(notice_id: int, status: str, error: str | None) -> str:
    notice = db.session.get(DunningNotice, notice_id)
    notice.status, notice.error = status, error
    if status == "sent":
        notice.sent_at = utcnow()
    record(f"dunning.reminder_{status}", "customer", notice.customer_id, AGENT,
           legal_entity_id=notice.legal_entity_id, notice_id=notice.id, level=notice.level,
           recipient=notice.email, **({"reason": error} if error else {}))
    db.session.commit()
    return status


# ------------------------------------------------------------------ reading (pages, timeline)
def notices_of_customer(customer_id: int) -> list[DunningNotice]:
    return list(db.session.scalars(select(DunningNotice).where(DunningNotice.customer_id == customer_id)
                                   .order_by(DunningNotice.as_of.desc(), DunningNotice.id.desc())))


def reminders_of_invoice(invoice_id: int) -> list[DunningNoticeItem]:
    return list(db.session.scalars(
        select(DunningNoticeItem).join(DunningNotice).options(joinedload(DunningNoticeItem.notice))
        .where(DunningNoticeItem.invoice_id == invoice_id).order_by(DunningNotice.as_of.desc(), DunningNotice.id.desc())))


def recent_notices(entity_id: int, limit: int = 25) -> list[DunningNotice]:
    return list(db.session.scalars(select(DunningNotice).where(DunningNotice.legal_entity_id == entity_id)
                                   .order_by(DunningNotice.id.desc()).limit(limit)))
