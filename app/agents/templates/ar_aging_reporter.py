"""AR Aging Reporter (a template): on its schedule (e.g. every Monday at 08:00 in the entity's time zone) it finds
the entity's open invoices overdue by more than N days, groups them by customer (or by age band) with totals per
currency, and e-mails the summary to a list; the subject carries the number of invoices and the total outstanding.

"Open" is the AR aging report's definition (app/reports/aging.py `open_invoice_clause`), so the reporter and
the report agree: more than 30 days overdue here is the report's 31-60, 61-90 and 90+ columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.agents.base import AgentSpec, RunOutcome, RunRequest, Setting
from app.agents.mailing import app_link, recipients_for, recipients_setting, send_to_list
from app.billing.money import round_money
from app.extensions import db
from app.formatting import format_money
from app.models import Customer, Invoice, LegalEntity
from app.reports.aging import bucket_for, days_past_due, open_invoice_clause

GROUPINGS = {"customer": "by customer", "age": "by age band (the aging report's columns)"}
# More invoice lines than this are not listed one by one: the mail points at the aging report.
LISTED_MAX = 500


def check_grouping(value: str) -> None:
    if value.strip() not in GROUPINGS:
        raise ValueError(f"{value!r} is not a grouping: use " + " or ".join(GROUPINGS))


@dataclass
class OverdueInvoice:
    number: str
    customer: str
    due_date: date
    days_overdue: int
    currency: str
    amount_due: Decimal


@dataclass
class Group:
    title: str
    invoices: list[OverdueInvoice] = field(default_factory=list)
    totals: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class OverdueReport:
    entity: LegalEntity
    as_of: date
    days_overdue: int
    groups: list[Group]
    totals: dict[str, Decimal]
    count: int

    def money(self, totals: dict[str, Decimal]) -> str:
        return ", ".join(format_money(amount, currency, self.entity.locale)
                         for currency, amount in sorted(totals.items()))


def _add(totals: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    totals[currency] = totals.get(currency, Decimal(0)) + amount


def overdue_report(entity: LegalEntity, days_overdue: int, group_by: str = "customer",
                   as_of: date | None = None) -> OverdueReport:
    """The entity's open invoices more than `days_overdue` days past due as of `as_of` (today in its zone)."""
    as_of = as_of or entity.today()
    query = (
        select(Invoice.number, Invoice.due_date, Invoice.currency, Invoice.amount_due, Customer.id, Customer.name)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.legal_entity_id == entity.id, open_invoice_clause(as_of),
               Invoice.due_date < as_of - timedelta(days=days_overdue))
        .order_by(Customer.name, Customer.id, Invoice.due_date, Invoice.number)
    )
    groups: dict[object, Group] = {}
    totals: dict[str, Decimal] = {}
    count = 0
    for number, due, currency, amount, customer_id, customer in db.session.execute(query):
        days = days_past_due(due, as_of)
        invoice = OverdueInvoice(number or "", customer, due, days, currency, round_money(Decimal(amount), currency))
        if group_by == "age":
            bucket = bucket_for(days)
            key, title = (-(bucket.min_days or 0), bucket.key), f"{bucket.label} days overdue"
        else:
            key, title = customer_id, customer
        group = groups.setdefault(key, Group(title))
        group.invoices.append(invoice)
        _add(group.totals, currency, invoice.amount_due)
        _add(totals, currency, invoice.amount_due)
        count += 1
    ordered = [groups[k] for k in sorted(groups)] if group_by == "age" else list(groups.values())
    for group in ordered:
        group.invoices.sort(key=lambda i: (-i.days_overdue, i.number))
    return OverdueReport(entity, as_of, days_overdue, ordered, totals, count)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def subject(report: OverdueReport) -> str:
    code, days = report.entity.code, report.days_overdue
    if not report.count:
        return f"{code}: no invoices overdue more than {days} days"
    return (f"{code}: {_plural(report.count, 'invoice')} overdue more than {days} days: "
            f"{report.money(report.totals)} outstanding")


def body(report: OverdueReport, agent_name: str) -> str:
    entity, locale = report.entity, report.entity.locale
    lines = [f"Overdue receivables of {entity.name} ({entity.code}) as of {report.as_of.isoformat()}: open invoices "
             f"more than {report.days_overdue} days past their due date.", ""]
    if not report.count:
        lines.append(f"Nothing is overdue more than {report.days_overdue} days: no open invoice of {entity.code} "
                     "is that far past its due date.")
    else:
        customers = len({i.customer for g in report.groups for i in g.invoices})
        lines += [f"{_plural(report.count, 'invoice')} of {_plural(customers, 'customer')}: "
                  f"{report.money(report.totals)} outstanding.", ""]
        listed = 0
        for group in report.groups:
            lines.append(f"{group.title}: {_plural(len(group.invoices), 'invoice')}, {report.money(group.totals)}")
            for invoice in group.invoices:
                if listed >= LISTED_MAX:
                    break
                listed += 1
                who = "" if group.title == invoice.customer else f"  {invoice.customer}"  # (grouped by age)
                lines.append(f"  {invoice.number:<20} due {invoice.due_date.isoformat()}  "
                             f"{invoice.days_overdue:>4} days overdue  "
                             f"{format_money(invoice.amount_due, invoice.currency, locale):>16}{who}")
            lines.append("")
        if listed < report.count:
            lines += [f"(The first {LISTED_MAX} invoices are listed; the AR aging report has them all.)", ""]
        lines.append(f"Total outstanding: {report.money(report.totals)}")
    link = app_link("reports.aging")
    lines += ["", *([f"The AR aging report: {link}"] if link else []),
              f"Sent by the agent “{agent_name}” (AR Aging Reporter) of {entity.code}."]
    return "\n".join(lines) + "\n"


def run(request: RunRequest) -> RunOutcome:
    settings = request.configuration
    report = overdue_report(request.entity, int(settings["days_overdue"]), (settings.get("group_by") or "customer").strip())
    details = {"as_of": report.as_of.isoformat(), "days_overdue": report.days_overdue, "invoices": report.count,
               "customers": len({i.customer for g in report.groups for i in g.invoices}),
               "totals": {currency: str(amount) for currency, amount in sorted(report.totals.items())}}
    title = subject(report)
    if not report.count and settings.get("skip_when_empty") and not request.test:
        return RunOutcome(f"nothing overdue more than {report.days_overdue} days: no e-mail (as set)",
                          details={**details, "sent_to": []})
    addresses, whom = recipients_for(request)
    details.update(subject=title, sent_to=addresses)
    if not addresses:
        return RunOutcome(f"would e-mail “{title}”; sent to {whom}", details=details)
    send_to_list(addresses, title, body(report, request.agent.name))
    return RunOutcome(f"e-mailed “{title}” to {whom}", details=details)


SPEC = AgentSpec(
    key="ar_aging_reporter",
    name="AR Aging Reporter",
    description=(
        "On its schedule (e.g. every Monday at 08:00 in the entity's time zone) finds the open invoices overdue "
        "by more than a number of days, groups them by customer with totals, and e-mails the summary to a list; "
        "the subject carries the number of overdue invoices and the total outstanding."
    ),
    trigger_events=("schedule.triggered", "manual.trigger"),
    settings=(
        Setting("days_overdue", "Overdue by more than (days)", "int", 30,
                "Invoices whose due date is more than this many days ago (30: the aging report's 31-60, 61-90 and "
                "90+ columns).", minimum=0, maximum=3650),
        Setting("group_by", "Group", "text", "customer",
                "customer: per customer with its totals; age: per age band (31-60, 61-90, 90+).",
                validator=check_grouping),
        recipients_setting("E-mail addresses, separated by commas. A test run sends only to you."),
        Setting("skip_when_empty", "Send nothing when nothing is overdue", "bool", False,
                "Off: a week without overdue invoices sends a short “nothing overdue” e-mail, so you know the "
                "report ran."),
    ),
    run=run,
    template=True,
    job_timeout=300,
)
