"""The AR aging report's SQL: what it reads so that it never sums every open invoice.

Two running totals are kept by triggers on `invoices` (app/models/receivables.py, migration 0023):
`open_balances` (per legal entity, currency, customer: the open amount and count) and `daily_sales` (credit
sales per issue date). The report reads them, plus the open invoices of a short window by due date
(`ix_invoices_open_due`), and derives every figure exactly:

- an open invoice due before the window's first day (`window_start`: the first due date of the last bounded
  bucket, 61-90) is in the open-ended bucket (90+) for this as-of date, and was issued before it (issue date ≤
  due date); so 90+ = the customer's open balance − what the window holds;
- an open invoice issued after the as-of date is not in the report (`open_invoice_clause`): it is due after the
  as-of date too, so in the window, where it is counted apart (LATER) and taken off the balance.

The cost is that of the window (every open invoice due in the last 90 days or later), not of all open invoices;
a customer list ordered by overdue amount needs only the invoices not yet due (`standings`). Bucket ranges
come from `Bucket.due_date_range`, so days past due are never computed in SQL (same query on SQLite).
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Integer, and_, case, cast, func, literal_column, select, union_all
from sqlalchemy.sql import Select

from app.models import Customer, DailySales, Invoice, OpenBalance
from app.models.types import Money
from app.reports.buckets import BUCKETS

WINDOWED = BUCKETS[:-1]  # the buckets with a bounded due-date range: read from the window
REST = BUCKETS[-1]  # the open-ended last one (90+): the balance less the window
LATER = -1  # the code of an open invoice issued after the as-of date
assert REST.max_days is None and all(b.max_days is not None for b in WINDOWED)
ZERO = literal_column("0")


def window_start(as_of: date) -> date:
    """The first due date the window holds: that of the last bounded bucket."""
    return WINDOWED[-1].due_date_range(as_of)[0]


def _open(entity_id: int):
    return and_(Invoice.legal_entity_id == entity_id, Invoice.is_open)


def _code(as_of: date):
    """The index in WINDOWED of an invoice's bucket, or LATER; for invoices due on or after window_start."""
    whens = [(Invoice.issue_date > as_of, literal_column(str(LATER)))]
    whens += [(Invoice.due_date >= b.due_date_range(as_of)[0], literal_column(str(i)))
              for i, b in enumerate(WINDOWED[:-1])]
    return case(*whens, else_=literal_column(str(len(WINDOWED) - 1)))


def _window(entity_id: int, as_of: date, currency: str | None, customer_ids) -> Select:
    """(currency, customer_id, code, amount_due) of the open invoices due on or after window_start."""
    query = (select(Invoice.currency, Invoice.customer_id, _code(as_of).label("code"), Invoice.amount_due)
             .where(_open(entity_id), Invoice.due_date >= window_start(as_of)))
    if currency is not None:
        query = query.where(Invoice.currency == currency)
    if customer_ids is not None:
        query = query.where(Invoice.customer_id.in_(customer_ids))
    return query


def _sum_where(column, condition):
    return func.coalesce(func.sum(case((condition, column), else_=ZERO)), ZERO)


def customer_rows_query(entity_id: int, as_of: date, *, currency: str | None = None, customer_ids=None) -> Select:
    """(currency, customer_id, name, one column per bucket, total, invoice count) per customer with open invoices
    as of `as_of`, largest overdue amount first, then the largest total (each currency apart, in code order)."""
    inner = _window(entity_id, as_of, currency, customer_ids).subquery("w")
    grouped = (select(inner.c.currency, inner.c.customer_id, inner.c.code,
                      func.sum(inner.c.amount_due).label("amount"), func.count().label("invoices"))
               .group_by(inner.c.currency, inner.c.customer_id, inner.c.code).subquery("g"))
    pivot = (select(grouped.c.currency, grouped.c.customer_id,
                    *(_sum_where(grouped.c.amount, grouped.c.code == i).label(b.key) for i, b in enumerate(WINDOWED)),
                    _sum_where(grouped.c.amount, grouped.c.code == LATER).label("later"),
                    _sum_where(grouped.c.invoices, grouped.c.code == LATER).label("later_invoices"),
                    func.sum(grouped.c.amount).label("windowed"))
             .group_by(grouped.c.currency, grouped.c.customer_id).subquery("p"))
    b = OpenBalance
    joined = and_(pivot.c.currency == b.currency, pivot.c.customer_id == b.customer_id)
    total = b.open_amount - func.coalesce(pivot.c.later, ZERO)
    invoices = b.open_invoices - func.coalesce(pivot.c.later_invoices, ZERO)
    current = func.coalesce(pivot.c[WINDOWED[0].key], ZERO)
    query = (
        select(b.currency, b.customer_id, Customer.name,
               *(func.coalesce(pivot.c[w.key], ZERO) for w in WINDOWED),
               (b.open_amount - func.coalesce(pivot.c.windowed, ZERO)).label(REST.key),
               total.label("total"), invoices.label("invoices"))
        .join(Customer, Customer.id == b.customer_id)
        .outerjoin(pivot, joined)
        .where(b.legal_entity_id == entity_id, b.open_invoices > 0, invoices > 0)
        .order_by(b.currency, (total - current).desc(), total.desc(), Customer.name, b.customer_id)
    )
    if currency is not None:
        query = query.where(b.currency == currency)
    if customer_ids is not None:
        query = query.where(b.customer_id.in_(customer_ids))
    return query


def bucket_totals_query(entity_id: int, as_of: date) -> Select:
    """(currency, code, amount, invoices) of the window per currency and code (WINDOWED index or LATER)."""
    inner = _window(entity_id, as_of, None, None).subquery("w")
    return (select(inner.c.currency, inner.c.code, func.sum(inner.c.amount_due), func.count())
            .group_by(inner.c.currency, inner.c.code))


def balance_totals_query(entity_id: int) -> Select:
    """(currency, open amount, open invoices) of the legal entity, issued at any date."""
    b = OpenBalance
    return (select(b.currency, func.sum(b.open_amount), func.sum(b.open_invoices))
            .where(b.legal_entity_id == entity_id, b.open_invoices > 0).group_by(b.currency))


def standings(entity_id: int, as_of: date) -> Select:
    """Per customer with open invoices as of `as_of`: currency, customer_id, name, overdue, total,
    invoices. Reads the balances and only the open invoices not yet due (due on or after `as_of`)."""
    not_due = (
        select(Invoice.currency, Invoice.customer_id,
               _sum_where(Invoice.amount_due, Invoice.issue_date <= as_of).label("current"),
               _sum_where(Invoice.amount_due, Invoice.issue_date > as_of).label("later"),
               _sum_where(literal_column("1"), Invoice.issue_date > as_of).label("later_invoices"))
        .where(_open(entity_id), Invoice.due_date >= as_of)
        .group_by(Invoice.currency, Invoice.customer_id)
    ).subquery("n")
    b = OpenBalance
    total = b.open_amount - func.coalesce(not_due.c.later, ZERO)
    invoices = b.open_invoices - func.coalesce(not_due.c.later_invoices, ZERO)
    overdue = total - func.coalesce(not_due.c.current, ZERO)
    return (
        select(b.currency, b.customer_id, Customer.name, overdue.label("overdue"), total.label("total"),
               invoices.label("invoices"))
        .join(Customer, Customer.id == b.customer_id)
        .outerjoin(not_due, and_(not_due.c.currency == b.currency, not_due.c.customer_id == b.customer_id))
        .where(b.legal_entity_id == entity_id, b.open_invoices > 0, invoices > 0)
    )


SLICE, TOP, COUNTS = 0, 1, 2  # the kinds of rows of ranked_customers_query


def ranked_customers_query(entity_id: int, as_of: date, currencies, top: int, *, search: str | None = None,
                           offset: int = 0, limit: int = 50):
    """What a page shows of the customers, per currency in `currencies`, as rows (kind, currency, customer_id,
    total, customers, found): kind SLICE: the customers at positions offset+1 … offset+limit by overdue amount,
    then total (among the names containing `search`), in that order; TOP: the `top` largest by total; COUNTS:
    customer_id None, how many customers have open invoices (customers) and how many of them match (found).
    The standings are computed once (a CTE read several times) and each list is a top-N, never a full sort."""
    s = standings(entity_id, as_of).cte("standings_cte")
    matches = s.c.name.icontains(search, autoescape=True) if search else None

    def none(name: str, type_=Integer):
        return cast(literal_column("NULL"), type_).label(name)

    def kind(value: int):
        return literal_column(str(value)).label("kind")

    parts = []
    for currency in currencies:
        in_currency = s.c.currency == currency
        shown = (select(kind(SLICE), s.c.currency, s.c.customer_id, s.c.total, none("customers"), none("found"))
                 .where(in_currency, *([matches] if matches is not None else []))
                 .order_by(s.c.overdue.desc(), s.c.total.desc(), s.c.name, s.c.customer_id)
                 .offset(offset).limit(limit).subquery())
        largest = (select(kind(TOP), s.c.currency, s.c.customer_id, s.c.total, none("customers"), none("found"))
                   .where(in_currency)
                   .order_by(s.c.total.desc(), s.c.name, s.c.customer_id).limit(top).subquery())
        parts += [select(*shown.c), select(*largest.c)]
    found = func.count() if matches is None else func.sum(case((matches, 1), else_=0))
    parts.append(select(kind(COUNTS), s.c.currency, none("customer_id"), none("total", Money),
                        func.count(), found).group_by(s.c.currency))
    return union_all(*parts)


def credit_sales_query(entity_id: int, as_of: date, window_days: int):
    """(currency, credit sales) in the `window_days` days up to and including `as_of` (app/models/receivables.py:
    invoices in a sales status, less the credit notes issued in those days)."""
    return (select(DailySales.currency, func.sum(DailySales.amount))
            .where(DailySales.legal_entity_id == entity_id, DailySales.issue_date > as_of - timedelta(days=window_days),
                   DailySales.issue_date <= as_of)
            .group_by(DailySales.currency))
