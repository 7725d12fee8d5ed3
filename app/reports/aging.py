"""The AR aging report: open receivables of a legal entity by customer and days past due.

The database does the summing from running totals kept by triggers (app/reports/aging_queries.py says how):
no request sums every open invoice. The page shows each currency's key figures, chart and totals for all
customers, and the customers in slices of PAGE_SIZE, largest overdue amount first, then the largest total
(what a credit controller looks at first); the CSV streams every customer in that order. Amounts are Decimals
at the currency's minor unit; different currencies are never added together: one section per currency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterator
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, exists, func, select
from sqlalchemy.sql.elements import ColumnElement

from app.billing.money import minor_unit
from app.errors import CurrencyError
from app.extensions import db
from app.models import Invoice, LegalEntity
from app.reports import aging_queries as q
from app.reports.buckets import BUCKET_KEYS, BUCKETS, OVER_30_KEYS, Bucket, bucket_for, days_past_due  # noqa: F401
from app.spreadsheets import PLAIN, CsvFormat, cell

ZERO = Decimal("0")
# DSO looks at the credit sales of this many days up to and including the as-of date.
DSO_WINDOW_DAYS = 90
# Invoices that count as credit sales for DSO: posted ones (drafts are not sales, voids are undone). Migration
# 0023's trigger keeps `daily_sales` by the same rule.
SALES_STATUSES = ("issued", "paid", "credited")  # credit notes (issued) count negative: they reduce sales
TOP_CUSTOMERS = 5
PAGE_SIZE = 50  # customers per slice of the page


# ------------------------------------------------------------------ what "open" means
def open_invoice_clause(as_of: date) -> ColumnElement[bool]:
    """Invoices open (`Invoice.is_open`) and issued by `as_of` (payment history will refine it)."""
    return and_(Invoice.is_open, Invoice.issue_date <= as_of)


# ------------------------------------------------------------------ the report
@dataclass
class AgingRow:
    """One customer's open amounts in one currency (or a section's totals: customer_id None)."""

    currency: str
    customer_id: int | None
    customer_name: str
    amounts: dict[str, Decimal]  # bucket key -> amount
    total: Decimal
    invoice_count: int

    def amount(self, key: str) -> Decimal:
        return self.amounts[key]


@dataclass
class KeyFigures:
    total_open: Decimal
    overdue: Decimal
    overdue_share: Decimal | None  # percent of the open amount past due
    over_30_share: Decimal | None  # percent of the open amount more than 30 days past due
    credit_sales: Decimal  # invoiced in the DSO window
    dso: Decimal | None  # days; None without sales in the window, or with less history than the window
    top_customers_share: Decimal | None  # percent of the open amount owed by the TOP_CUSTOMERS largest


@dataclass
class CurrencySection:
    currency: str
    rows: list[AgingRow]  # every customer (aging_report) or one slice of them (aging_page)
    totals: AgingRow  # of every customer
    figures: KeyFigures
    customers: int = 0  # customers with open invoices in this currency
    found: int = 0  # of them, those the search finds (all without a search)
    next_offset: int | None = None  # where the next slice starts; None: the last one is shown
    top_total: Decimal = ZERO  # what the TOP_CUSTOMERS largest customers owe


@dataclass
class AgingReport:
    entity_id: int
    entity_code: str
    as_of: date
    sections: list[CurrencySection] = field(default_factory=list)
    # Set when the sales history is shorter than the DSO window (DSO is not shown): the first sale's date.
    first_sale: date | None = None
    search: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.sections


def default_as_of(entity: LegalEntity) -> date:
    """Today in the entity's time zone."""
    return entity.today()


def _quantum(currency: str) -> Decimal | None:
    """The currency's minor unit as a Decimal quantum (0.01 for EUR); None for a code we do not know."""
    try:
        return Decimal(1).scaleb(-minor_unit(currency))
    except CurrencyError:
        return None


def _at_minor_unit(value, quantum: Decimal | None) -> Decimal:
    """A SUM as a Decimal at the currency's minor unit (SQLite may hand back floats, PostgreSQL Decimals)."""
    value = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    return value.quantize(quantum, rounding=ROUND_HALF_UP) if quantum is not None else value


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole in percent, one decimal, half-up; None when whole is 0."""
    if not whole:
        return None
    return (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def dso_days(open_amount: Decimal, credit_sales: Decimal, window_days: int = DSO_WINDOW_DAYS) -> Decimal | None:
    """Days sales outstanding = open receivables / credit sales of the window × its days; None without sales."""
    if not credit_sales:
        return None
    return (open_amount / credit_sales * window_days).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def credit_sales_query(entity_id: int, as_of: date, window_days: int = DSO_WINDOW_DAYS):
    """(currency, credit sales) in the `window_days` days up to and including `as_of`: invoiced (total amount)
    less the credit notes issued in those days."""
    return q.credit_sales_query(entity_id, as_of, window_days)


def short_sales_history(entity_id: int, as_of: date, window_days: int = DSO_WINDOW_DAYS) -> tuple[bool, date | None]:
    """(True, the first sale's date or None) when the legal entity has no sale as old as the DSO window's first
    day: DSO would then measure days without sales (on day one it says "90 days"). (False, None) otherwise."""
    sales = and_(Invoice.legal_entity_id == entity_id, Invoice.kind == "invoice", Invoice.status.in_(SALES_STATUSES))
    window_start = as_of - timedelta(days=window_days - 1)
    if db.session.scalar(select(exists().where(sales, Invoice.issue_date <= window_start))):
        return False, None
    return True, db.session.scalar(select(func.min(Invoice.issue_date)).where(sales, Invoice.issue_date <= as_of))


class _Quanta(dict):
    """Currency → its minor unit quantum, looked up once."""

    def __missing__(self, currency: str) -> Decimal | None:
        self[currency] = _quantum(currency)
        return self[currency]


def _amount_rows(query, quanta: _Quanta) -> Iterator[tuple]:
    """(currency, customer_id, name, amount per bucket …, total, invoice count) of
    `aging_queries.customer_rows_query`, amounts at the minor unit, as they come."""
    n = len(BUCKET_KEYS)
    for r in db.session.execute(query).yield_per(2000):
        quantum = quanta[r[0]]
        yield (r[0], r[1], r[2], *(_at_minor_unit(v, quantum) for v in r[3:4 + n]), int(r[4 + n]))


def _customer_rows(query, quanta: _Quanta) -> Iterator[AgingRow]:
    """AgingRows of `aging_queries.customer_rows_query`, as they come."""
    n = len(BUCKET_KEYS)
    for r in _amount_rows(query, quanta):
        yield AgingRow(r[0], r[1], r[2], dict(zip(BUCKET_KEYS, r[3:3 + n])), r[3 + n], r[4 + n])


def totals_row(currency: str, rows: list[AgingRow]) -> AgingRow:
    """The totals row: the sum of the customer rows shown (exact Decimal sums of aggregated rows)."""
    return AgingRow(currency, None, "Total", {key: sum((r.amounts[key] for r in rows), ZERO) for key in BUCKET_KEYS},
                    sum((r.total for r in rows), ZERO), sum(r.invoice_count for r in rows))


def _currency_order(entity: LegalEntity, currencies) -> list[str]:
    """The entity's own currency first, then the others alphabetically."""
    return sorted(currencies, key=lambda c: (c != entity.currency, c))


def _sales(entity: LegalEntity, as_of: date) -> tuple[dict[str, Decimal], bool, date | None]:
    sales = {c: _at_minor_unit(s, _quantum(c)) for c, s in db.session.execute(credit_sales_query(entity.id, as_of))}
    return (sales, *short_sales_history(entity.id, as_of))


def aging_report(entity: LegalEntity, as_of: date) -> AgingReport:
    """The aging of `entity`'s open invoices as of `as_of`, one section per currency, every customer."""
    rows_by_currency: dict[str, list[AgingRow]] = {}
    for row in _customer_rows(q.customer_rows_query(entity.id, as_of), _Quanta()):
        rows_by_currency.setdefault(row.currency, []).append(row)
    sales, short_history, first_sale = _sales(entity, as_of)
    report = AgingReport(entity.id, entity.code, as_of, first_sale=first_sale)
    for currency in _currency_order(entity, rows_by_currency):
        rows = rows_by_currency[currency]
        totals = totals_row(currency, rows)
        top = sum(sorted((r.total for r in rows), reverse=True)[:TOP_CUSTOMERS], ZERO)
        report.sections.append(CurrencySection(currency, rows, totals,
                                               key_figures(totals, top, sales.get(currency, ZERO), short_history),
                                               customers=len(rows), found=len(rows)))
    return report


def _bucket_totals(entity_id: int, as_of: date, quanta: _Quanta) -> dict[str, AgingRow]:
    """Currency → the totals row of every customer, from the balances and the window (aging_queries)."""
    window: dict[str, dict[int, tuple]] = {}
    for currency, code, amount, count in db.session.execute(q.bucket_totals_query(entity_id, as_of)):
        window.setdefault(currency, {})[int(code)] = (amount, int(count))
    totals = {}
    for currency, open_amount, open_count in db.session.execute(q.balance_totals_query(entity_id)):
        codes = window.get(currency, {})
        later, later_count = codes.get(q.LATER, (0, 0))
        amounts = {b.key: codes.get(i, (0, 0))[0] for i, b in enumerate(q.WINDOWED)}
        amounts[q.REST.key] = open_amount - sum(amount for amount, _count in codes.values())
        count = int(open_count) - later_count
        if count > 0:
            quantum = quanta[currency]
            totals[currency] = AgingRow(currency, None, "Total",
                                        {k: _at_minor_unit(v, quantum) for k, v in amounts.items()},
                                        _at_minor_unit(open_amount - later, quantum), count)
    return totals


def _standing(row: AgingRow) -> tuple:
    """The order of the customer list: largest overdue amount first, then the largest total, then the name
    (aging_queries orders so in SQL)."""
    return -(row.total - row.amounts["current"]), -row.total, row.customer_name, row.customer_id


def aging_slice(entity: LegalEntity, as_of: date, *, currency: str | None = None, search: str = "",
                offset: int = 0, limit: int = PAGE_SIZE) -> dict[str, CurrencySection]:
    """Currency → a section with the customers at offset+1 … offset+limit (overdue, then total, largest first;
    among those whose name contains `search`), how many there are, what the largest owe and where the next
    slice starts; its totals and figures are left None (aging_page adds them). Every currency with open
    invoices, or only `currency`."""
    quanta = _Quanta()
    currency = currency or None
    currencies = [currency] if currency else [c for c, _a, _n in db.session.execute(q.balance_totals_query(entity.id))]
    if not currencies:
        return {}
    sections: dict[str, CurrencySection] = {}
    shown: list[tuple[str, int]] = []
    for kind, cur, customer_id, total, customers, found in db.session.execute(q.ranked_customers_query(
            entity.id, as_of, currencies, TOP_CUSTOMERS, search=search or None, offset=offset, limit=limit)):
        section = sections.setdefault(cur, CurrencySection(cur, [], None, None))
        if kind == q.SLICE:
            shown.append((cur, customer_id))
        elif kind == q.TOP:
            section.top_total += _at_minor_unit(total, quanta[cur])
        else:
            section.customers, section.found = int(customers), int(found or 0)
    if shown:
        rows = {(row.currency, row.customer_id): row for row in _customer_rows(
            q.customer_rows_query(entity.id, as_of, currency=currency, customer_ids=[c for _cur, c in shown]),
            quanta)}
        # in the order of the standings (a UNION ALL keeps no order of its own)
        for key in sorted(shown, key=lambda k: _standing(rows[k])):
            sections[key[0]].rows.append(rows[key])
    for section in sections.values():
        end = offset + len(section.rows)
        section.next_offset = end if section.rows and end < section.found else None
    return sections


def aging_page(entity: LegalEntity, as_of: date, search: str = "", limit: int = PAGE_SIZE) -> AgingReport:
    """What the page shows: per currency the key figures, the totals of every customer, and the first `limit`
    customers (among those whose name contains `search`)."""
    quanta = _Quanta()
    totals = _bucket_totals(entity.id, as_of, quanta)
    slices = aging_slice(entity, as_of, search=search, limit=limit) if totals else {}
    sales, short_history, first_sale = _sales(entity, as_of)
    report = AgingReport(entity.id, entity.code, as_of, first_sale=first_sale, search=search)
    for currency in _currency_order(entity, totals):
        section = slices[currency]
        section.totals = totals[currency]
        section.figures = key_figures(section.totals, section.top_total, sales.get(currency, ZERO), short_history)
        report.sections.append(section)
    return report


def key_figures(totals: AgingRow, top_customers_total: Decimal, credit_sales: Decimal,
                short_history: bool = False) -> KeyFigures:
    """The cards of one currency section, from its totals and what its TOP_CUSTOMERS largest customers owe; no
    DSO with `short_history` (fewer days of sales than the DSO window)."""
    open_amount = totals.total
    overdue = open_amount - totals.amounts["current"]
    over_30 = sum((totals.amounts[k] for k in OVER_30_KEYS), ZERO)
    return KeyFigures(
        total_open=open_amount,
        overdue=overdue,
        overdue_share=percent(overdue, open_amount),
        over_30_share=percent(over_30, open_amount),
        credit_sales=credit_sales,
        dso=None if short_history else dso_days(open_amount, credit_sales),
        top_customers_share=percent(top_customers_total, open_amount),
    )


# ------------------------------------------------------------------ one customer's open invoices
@dataclass
class OpenInvoice:
    id: int
    number: str | None
    issue_date: date
    due_date: date
    days_past_due: int
    bucket: Bucket
    currency: str
    amount_due: Decimal


def customer_open_invoices(customer_id: int, as_of: date, currency: str | None = None) -> list[OpenInvoice]:
    """The customer's open invoices as of `as_of` (optionally of one currency), oldest due date first."""
    query = (
        select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.due_date, Invoice.currency,
               Invoice.amount_due)
        .where(Invoice.customer_id == customer_id, open_invoice_clause(as_of))
        .order_by(Invoice.currency, Invoice.due_date, Invoice.number, Invoice.id)
    )
    if currency:
        query = query.where(Invoice.currency == currency)
    result = []
    for id_, number, issued, due, cur, amount in db.session.execute(query):
        days = days_past_due(due, as_of)
        result.append(OpenInvoice(id_, number, issued, due, days, bucket_for(days), cur,
                                  _at_minor_unit(amount, _quantum(cur))))
    return result


# ------------------------------------------------------------------ CSV (what the page shows)
CSV_HEADER = ("Currency", "Customer", *(b.label for b in BUCKETS), "Total")


def plain_amount(amount: Decimal) -> str:
    """58.53: a plain decimal string, never exponent notation."""
    return format(amount, "f")


def aging_table_rows(report: AgingReport) -> Iterator[tuple]:
    """Per currency one row per customer and the totals row, as typed cells (app/spreadsheets.py writes them)."""
    for section in report.sections:
        for row in [*section.rows, section.totals]:
            yield (section.currency, row.customer_name, *(row.amounts[k] for k in BUCKET_KEYS), row.total)


def aging_csv_rows(report: AgingReport, fmt: CsvFormat = PLAIN) -> list[list[str]]:
    """Header, then per currency one row per customer and the totals row: the CSV's cells."""
    return [list(CSV_HEADER), *([cell(value, fmt) for value in row] for row in aging_table_rows(report))]


def aging_csv_stream(entity: LegalEntity, as_of: date) -> Iterator[tuple]:
    """What `aging_table_rows(aging_report(entity, as_of))` gives, read from the database as it is written out
    (one currency after the other, customer rows as they come), so the CSV streams."""
    quanta = _Quanta()
    currencies = [c for c, _amount, _count in db.session.execute(q.balance_totals_query(entity.id))]
    for currency in _currency_order(entity, currencies):
        sums, count = [ZERO] * (len(BUCKET_KEYS) + 1), 0
        for r in _amount_rows(q.customer_rows_query(entity.id, as_of, currency=currency), quanta):
            amounts = r[3:-1]  # the buckets and the total
            yield (currency, r[2], *amounts)
            sums = [a + b for a, b in zip(sums, amounts)]
            count += 1
        if count:
            yield (currency, "Total", *sums)


def csv_filename(entity_code: str, as_of: date) -> str:
    return f"ar-aging-{entity_code}-{as_of.isoformat()}.csv"
