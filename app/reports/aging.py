"""The AR aging report: open receivables of a legal entity by customer and days past due.

The database does the summing: one GROUP BY (currency, customer) with SUM(CASE …) per bucket; the
totals row adds up those (at most a few thousand) aggregated rows exactly, in Decimal.
Days past due are never computed in SQL: each bucket is a range of due dates computed here from
the as-of date (`Bucket.due_date_range`), so the query is the same on SQLite and PostgreSQL.
Different currencies are never added together: the report has one section per currency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterator
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, exists, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from app.billing.money import minor_unit
from app.errors import CurrencyError
from app.extensions import db
from app.models import Customer, Invoice, LegalEntity
from app.spreadsheets import PLAIN, CsvFormat, cell

ZERO = Decimal("0")
# DSO looks at the credit sales of this many days up to and including the as-of date.
DSO_WINDOW_DAYS = 90
# Invoices that count as credit sales for DSO: posted ones (drafts are not sales, voids are undone).
SALES_STATUSES = ("issued", "paid", "credited")  # credit notes (issued) count negative: they reduce sales
TOP_CUSTOMERS = 5


# ------------------------------------------------------------------ the buckets (pure)
@dataclass(frozen=True)
class Bucket:
    """Days past due (as_of − due_date) from `min_days` to `max_days`, both inclusive; None is open-ended."""

    key: str
    label: str
    min_days: int | None
    max_days: int | None

    def contains(self, days_past_due: int) -> bool:
        return ((self.min_days is None or days_past_due >= self.min_days)
                and (self.max_days is None or days_past_due <= self.max_days))

    def due_date_range(self, as_of: date) -> tuple[date | None, date | None]:
        """The due dates (earliest, latest; inclusive, None = unbounded) of this bucket as of `as_of`."""
        earliest = as_of - timedelta(days=self.max_days) if self.max_days is not None else None
        latest = as_of - timedelta(days=self.min_days) if self.min_days is not None else None
        return earliest, latest


BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", "Current", None, 0),  # not yet due (due today counts as current)
    Bucket("d1_30", "1-30", 1, 30),
    Bucket("d31_60", "31-60", 31, 60),
    Bucket("d61_90", "61-90", 61, 90),
    Bucket("d90_plus", "90+", 91, None),
)
BUCKET_KEYS = tuple(b.key for b in BUCKETS)
OVER_30_KEYS = ("d31_60", "d61_90", "d90_plus")


def days_past_due(due_date: date, as_of: date) -> int:
    """Days since the due date; 0 or less: not yet past due."""
    return (as_of - due_date).days


def bucket_for(days: int) -> Bucket:
    for bucket in BUCKETS:
        if bucket.contains(days):
            return bucket
    raise AssertionError(f"no bucket for {days} days")  # the buckets cover every integer


# ------------------------------------------------------------------ what "open" means
def open_invoice_clause(as_of: date) -> ColumnElement[bool]:
    """Invoices open (`Invoice.is_open`) and issued by `as_of` (payment history will refine it)."""
    return and_(Invoice.is_open, Invoice.issue_date <= as_of)


def _bucket_clause(bucket: Bucket, as_of: date) -> ColumnElement[bool]:
    earliest, latest = bucket.due_date_range(as_of)
    parts = []
    if earliest is not None:
        parts.append(Invoice.due_date >= earliest)
    if latest is not None:
        parts.append(Invoice.due_date <= latest)
    return and_(*parts)


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
    rows: list[AgingRow]
    totals: AgingRow
    figures: KeyFigures


@dataclass
class AgingReport:
    entity_id: int
    entity_code: str
    as_of: date
    sections: list[CurrencySection] = field(default_factory=list)
    # Set when the sales history is shorter than the DSO window (DSO is not shown): the first sale's date.
    first_sale: date | None = None

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


def _bucket_sums(as_of: date) -> list:
    amount = Invoice.amount_due
    zero = literal_column("0")
    return [func.coalesce(func.sum(case((_bucket_clause(b, as_of), amount), else_=zero)), zero).label(b.key)
            for b in BUCKETS]


def aging_rows_query(entity_id: int, as_of: date):
    """(currency, customer_id, customer name, one column per bucket, total, invoice count), largest first."""
    grouped = (
        select(Invoice.currency, Invoice.customer_id, *_bucket_sums(as_of),
               func.sum(Invoice.amount_due).label("total"), func.count().label("invoices"))
        .where(Invoice.legal_entity_id == entity_id, open_invoice_clause(as_of))
        .group_by(Invoice.currency, Invoice.customer_id)
        .subquery("aging")
    )
    return (
        select(grouped.c.currency, grouped.c.customer_id, Customer.name,
               *(grouped.c[key] for key in BUCKET_KEYS), grouped.c.total, grouped.c.invoices)
        .join(Customer, Customer.id == grouped.c.customer_id)
        .order_by(grouped.c.currency, grouped.c.total.desc(), Customer.name, grouped.c.customer_id)
    )


def credit_sales_query(entity_id: int, as_of: date, window_days: int = DSO_WINDOW_DAYS):
    """Invoiced (total amount) per currency in the `window_days` days up to and including `as_of`, less the
    credit notes issued in those days."""
    signed = case((Invoice.kind == "credit_note", -Invoice.total_amount), else_=Invoice.total_amount)
    return (
        select(Invoice.currency, func.sum(signed))
        .where(Invoice.legal_entity_id == entity_id, Invoice.status.in_(SALES_STATUSES),
               Invoice.issue_date > as_of - timedelta(days=window_days), Invoice.issue_date <= as_of)
        .group_by(Invoice.currency)
    )


def short_sales_history(entity_id: int, as_of: date, window_days: int = DSO_WINDOW_DAYS) -> tuple[bool, date | None]:
    """(True, the first sale's date or None) when the legal entity has no sale as old as the DSO window's first
    day: DSO would then measure days without sales (on day one it says "90 days"). (False, None) otherwise."""
    sales = and_(Invoice.legal_entity_id == entity_id, Invoice.kind == "invoice", Invoice.status.in_(SALES_STATUSES))
    window_start = as_of - timedelta(days=window_days - 1)
    if db.session.scalar(select(exists().where(sales, Invoice.issue_date <= window_start))):
        return False, None
    return True, db.session.scalar(select(func.min(Invoice.issue_date)).where(sales, Invoice.issue_date <= as_of))


def _row(currency: str, quantum: Decimal | None, customer_id: int, name: str, values, total, count) -> AgingRow:
    return AgingRow(currency, customer_id, name,
                    {key: _at_minor_unit(v, quantum) for key, v in zip(BUCKET_KEYS, values)},
                    _at_minor_unit(total, quantum), int(count))


def totals_row(currency: str, rows: list[AgingRow]) -> AgingRow:
    """The totals row: the sum of the customer rows shown (exact Decimal sums of aggregated rows)."""
    return AgingRow(currency, None, "Total", {key: sum((r.amounts[key] for r in rows), ZERO) for key in BUCKET_KEYS},
                    sum((r.total for r in rows), ZERO), sum(r.invoice_count for r in rows))


def aging_report(entity: LegalEntity, as_of: date) -> AgingReport:
    """The aging of `entity`'s open invoices as of `as_of`, one section per currency."""
    n = len(BUCKET_KEYS)
    rows_by_currency: dict[str, list[AgingRow]] = {}
    quanta: dict[str, Decimal | None] = {}
    for r in db.session.execute(aging_rows_query(entity.id, as_of)):
        currency = r[0]
        if currency not in quanta:
            quanta[currency] = _quantum(currency)
        rows_by_currency.setdefault(currency, []).append(
            _row(currency, quanta[currency], r[1], r[2], r[3:3 + n], r[3 + n], r[4 + n]))
    sales = {c: _at_minor_unit(s, _quantum(c)) for c, s in db.session.execute(credit_sales_query(entity.id, as_of))}
    short_history, first_sale = short_sales_history(entity.id, as_of)

    # The entity's own currency first, then the others alphabetically.
    currencies = sorted(rows_by_currency, key=lambda c: (c != entity.currency, c))
    report = AgingReport(entity.id, entity.code, as_of, first_sale=first_sale)
    for currency in currencies:
        rows = rows_by_currency[currency]
        totals = totals_row(currency, rows)
        report.sections.append(CurrencySection(currency, rows, totals,
                                               key_figures(rows, totals, sales.get(currency, ZERO), short_history)))
    return report


def key_figures(rows: list[AgingRow], totals: AgingRow, credit_sales: Decimal,
                short_history: bool = False) -> KeyFigures:
    """The cards of one currency section, from its (already aggregated) rows, largest first; no DSO with
    `short_history` (fewer days of sales than the DSO window)."""
    open_amount = totals.total
    overdue = open_amount - totals.amounts["current"]
    over_30 = sum((totals.amounts[k] for k in OVER_30_KEYS), ZERO)
    top = sum((row.total for row in rows[:TOP_CUSTOMERS]), ZERO)
    return KeyFigures(
        total_open=open_amount,
        overdue=overdue,
        overdue_share=percent(overdue, open_amount),
        over_30_share=percent(over_30, open_amount),
        credit_sales=credit_sales,
        dso=None if short_history else dso_days(open_amount, credit_sales),
        top_customers_share=percent(top, open_amount),
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


def csv_filename(report: AgingReport) -> str:
    return f"ar-aging-{report.entity_code}-{report.as_of.isoformat()}.csv"
