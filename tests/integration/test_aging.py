"""AR aging: the buckets (pure), the SQL aggregation, key figures and CSV rows, on the real database."""
from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest

from app.extensions import db
from app.models import Invoice
from app.reports.aging import (BUCKETS, BUCKET_KEYS, aging_csv_rows, aging_report, bucket_for, csv_filename,
                               customer_open_invoices, days_past_due, dso_days, percent)
from app.reports.chart import bar_chart
from tests.factories import make_contract, make_entity

AS_OF = date(2026, 11, 26)
D = Decimal
_refs = count(1)


def add_invoice(entity, customer, amount, *, due=None, days=None, status="issued", currency="EUR", issue=None,
                amount_due=None, total=None):
    """An invoice of `customer` (created if new); `days` past due as of AS_OF, or an explicit `due` date."""
    n = next(_refs)
    due = due or AS_OF - timedelta(days=days if days is not None else -10)
    if issue is None:
        issue = min(due, AS_OF) - timedelta(days=14)
    contract = make_contract(entity, f"C-{n}", start=date(2020, 1, 1), customer=customer, currency=currency)
    total = D(str(total if total is not None else amount))
    invoice = Invoice(
        legal_entity_id=entity.id, customer_id=contract.customer_id, contract_id=contract.id,
        period_start=issue, period_end=issue + timedelta(days=29),
        number=None if status == "draft" else f"{entity.code}-T-{n:05d}", issue_date=issue, due_date=due,
        currency=currency, net_amount=total, tax_amount=D("0"), total_amount=total,
        amount_due=D(str(amount_due if amount_due is not None else amount)) if status == "issued" else (
            D("0") if status == "paid" else total),
        status=status)
    db.session.add(invoice)
    db.session.flush()
    return invoice


def section(report, currency="EUR"):
    return next(s for s in report.sections if s.currency == currency)


def row(report, name, currency="EUR"):
    return next(r for r in section(report, currency).rows if r.customer_name == name)


# ------------------------------------------------------------------ pure: the buckets
@pytest.mark.parametrize("days, key", [
    (-30, "current"), (-1, "current"), (0, "current"), (1, "d1_30"), (30, "d1_30"), (31, "d31_60"),
    (60, "d31_60"), (61, "d61_90"), (90, "d61_90"), (91, "d90_plus"), (5000, "d90_plus")])
def test_bucket_boundaries(days, key):
    assert bucket_for(days).key == key


def test_bucket_due_date_ranges_agree_with_days_past_due():
    """The SQL uses due-date ranges; they must put each due date where bucket_for puts its days."""
    assert [b.label for b in BUCKETS] == ["Current", "1-30", "31-60", "61-90", "90+"]
    for days in range(-40, 400):
        due = AS_OF - timedelta(days=days)
        assert days_past_due(due, AS_OF) == days
        holders = [b for b in BUCKETS
                   if (b.due_date_range(AS_OF)[0] is None or due >= b.due_date_range(AS_OF)[0])
                   and (b.due_date_range(AS_OF)[1] is None or due <= b.due_date_range(AS_OF)[1])]
        assert holders == [bucket_for(days)], days


def test_percent_and_dso_definitions():
    assert percent(D("1"), D("3")) == D("33.3")
    assert percent(D("2"), D("3")) == D("66.7")  # half-up on one decimal
    assert percent(D("1"), D("0")) is None
    assert dso_days(D("500"), D("1500")) == D("30.0")  # 500 / 1500 × 90
    assert dso_days(D("500"), D("0")) is None


def test_chart_bars_are_proportional_and_labelled():
    chart = bar_chart([("a", "A", D("100")), ("b", "B", D("50")), ("c", "C", D("0")), ("d", "D", D("0.01"))],
                      width=400, height=200, top_margin=20, bottom_margin=30)
    a, b, c, d = chart.bars
    assert a.height == 150 and b.height == 75 and c.height == 0 and d.height == 2  # tiny but visible
    assert all(bar.y + bar.height == chart.baseline == 170 for bar in chart.bars)
    assert [bar.label for bar in chart.bars] == ["A", "B", "C", "D"] and a.x < b.x < c.x < d.x


# ------------------------------------------------------------------ the aggregation
def test_each_boundary_day_lands_in_its_bucket(db_session):
    entity = make_entity()
    # Distinct powers of two: each bucket's sum says exactly which invoices it holds.
    for i, days in enumerate([-3, 0, 1, 30, 31, 60, 61, 90, 91, 400]):
        add_invoice(entity, "Acme", 2 ** i, days=days)
    report = aging_report(entity, AS_OF)
    acme = row(report, "Acme")
    assert acme.amounts == {"current": D(1 + 2), "d1_30": D(4 + 8), "d31_60": D(16 + 32), "d61_90": D(64 + 128),
                            "d90_plus": D(256 + 512)}
    assert acme.total == D(1023) and acme.invoice_count == 10


def test_only_open_invoices_of_the_entity_as_of_the_date_count(db_session):
    entity, other = make_entity(), make_entity("FR01", currency="EUR")
    add_invoice(entity, "Acme", "100.00", days=5)
    add_invoice(entity, "Acme", "40.00", days=5, amount_due="15.50", total="40.00")  # partly paid: what is due
    add_invoice(entity, "Acme", "7.00", days=5, status="paid")
    add_invoice(entity, "Acme", "8.00", days=5, status="void")
    add_invoice(entity, "Acme", "9.00", days=5, status="draft")
    add_invoice(entity, "Acme", "0.00", days=5, amount_due="0", total="20.00")  # issued but nothing due
    add_invoice(entity, "Acme", "11.00", due=AS_OF + timedelta(days=20), issue=AS_OF + timedelta(days=1))  # later
    add_invoice(other, "Acme", "13.00", days=5)  # another entity's customer
    report = aging_report(entity, AS_OF)
    assert [r.customer_name for r in section(report).rows] == ["Acme"]
    assert row(report, "Acme").amounts["d1_30"] == D("115.50") and row(report, "Acme").total == D("115.50")
    assert row(report, "Acme").invoice_count == 2
    # Issued on the as-of date itself counts.
    assert aging_report(entity, AS_OF + timedelta(days=1)).sections[0].totals.total == D("126.50")


def test_currencies_are_never_added_together(db_session):
    entity = make_entity()
    add_invoice(entity, "Acme", "100.00", days=10, currency="USD")
    add_invoice(entity, "Acme", "50.00", days=10, currency="EUR")
    add_invoice(entity, "Bolt", "1500", days=45, currency="JPY")
    report = aging_report(entity, AS_OF)
    assert [s.currency for s in report.sections] == ["EUR", "JPY", "USD"]  # the entity's own currency first
    assert section(report, "EUR").totals.total == D("50.00")
    assert section(report, "USD").totals.total == D("100.00")
    assert row(report, "Bolt", "JPY").amounts["d31_60"] == D("1500")
    assert [r.customer_name for r in section(report, "USD").rows] == ["Acme"]


def test_rows_sorted_by_overdue_then_total_and_totals_row_is_their_sum(db_session):
    entity = make_entity()
    data = {"Acme": [("10.00", 0), ("20.00", 45)], "Bolt": [("300.00", 100)], "Cargo": [("5.55", 15), ("1.45", 70)]}
    for name, invoices in data.items():
        for amount, days in invoices:
            add_invoice(entity, name, amount, days=days)
    eur = section(aging_report(entity, AS_OF))
    assert [r.customer_name for r in eur.rows] == ["Bolt", "Acme", "Cargo"]
    for key in BUCKET_KEYS:
        assert eur.totals.amounts[key] == sum(r.amounts[key] for r in eur.rows)
    assert eur.totals.total == sum(r.total for r in eur.rows) == D("337.00")
    assert eur.totals.invoice_count == 5


def test_key_figures_on_a_hand_computed_example(db_session):
    entity = make_entity()
    # Open: 7 customers, 2,000.00 in all; current 600, 1-30 400, 31-60 500, 61-90 300, 90+ 200.
    add_invoice(entity, "A", "600.00", days=-5, issue=AS_OF - timedelta(days=9))  # current, sold in the window
    add_invoice(entity, "B", "400.00", days=20, issue=AS_OF - timedelta(days=34))  # sold in the window
    add_invoice(entity, "C", "500.00", days=40, issue=AS_OF - timedelta(days=54))  # sold in the window
    add_invoice(entity, "D", "300.00", days=70, issue=AS_OF - timedelta(days=84))  # sold in the window
    add_invoice(entity, "E", "100.00", days=120, issue=AS_OF - timedelta(days=134))  # before the window
    add_invoice(entity, "F", "60.00", days=95, issue=AS_OF - timedelta(days=109))
    add_invoice(entity, "G", "40.00", days=100, issue=AS_OF - timedelta(days=114))
    # Sales in the window that are not open: a paid invoice counts, a void one and a draft do not.
    add_invoice(entity, "H", "200.00", days=10, status="paid", issue=AS_OF - timedelta(days=89))  # first day in
    add_invoice(entity, "H", "999.00", days=10, status="void", issue=AS_OF - timedelta(days=30))
    add_invoice(entity, "H", "999.00", days=10, status="draft", issue=AS_OF - timedelta(days=30))
    add_invoice(entity, "H", "777.00", days=10, status="paid", issue=AS_OF - timedelta(days=90))  # just outside
    f = section(aging_report(entity, AS_OF)).figures
    assert f.total_open == D("2000.00")
    assert f.overdue == D("1400.00") and f.overdue_share == D("70.0")  # 1,400 / 2,000
    assert f.over_30_share == D("50.0")  # (500 + 300 + 200) / 2,000
    assert f.credit_sales == D("2000.00")  # 600 + 400 + 500 + 300 + 200 (paid)
    assert f.dso == D("90.0")  # 2,000 / 2,000 × 90
    assert f.top_customers_share == D("95.0")  # A 600 + C 500 + B 400 + D 300 + E 100 = 1,900 of 2,000


def test_dso_is_none_without_sales_in_the_window(db_session):
    entity = make_entity()
    add_invoice(entity, "Old", "10.00", days=200)
    assert section(aging_report(entity, AS_OF)).figures.dso is None


def test_empty_report(db_session):
    entity = make_entity()
    add_invoice(entity, "Acme", "10.00", days=5, status="paid")
    report = aging_report(entity, AS_OF)
    assert report.is_empty and aging_csv_rows(report) == [
        ["Currency", "Customer", "Current", "1-30", "31-60", "61-90", "90+", "Total"]]


def test_customer_open_invoices(db_session):
    entity = make_entity()
    late = add_invoice(entity, "Acme", "20.00", days=31)
    soon = add_invoice(entity, "Acme", "10.00", days=-2)
    add_invoice(entity, "Acme", "5.00", days=3, currency="USD")
    add_invoice(entity, "Acme", "5.00", days=3, status="paid")
    invoices = customer_open_invoices(late.customer_id, AS_OF, "EUR")
    assert [(i.number, i.days_past_due, i.bucket.label, i.amount_due) for i in invoices] == [
        (late.number, 31, "31-60", D("20.00")), (soon.number, -2, "Current", D("10.00"))]
    assert len(customer_open_invoices(late.customer_id, AS_OF)) == 3  # every currency


def test_csv_rows_are_plain_decimals_per_currency_with_totals(db_session):
    entity = make_entity()
    add_invoice(entity, "Bolt", "58.53", days=-14)
    add_invoice(entity, "=HYPERLINK(1)", "1.50", days=61)
    add_invoice(entity, "Bolt", "1500", days=45, currency="JPY")
    report = aging_report(entity, AS_OF)
    assert aging_csv_rows(report) == [
        ["Currency", "Customer", "Current", "1-30", "31-60", "61-90", "90+", "Total"],
        ["EUR", "'=HYPERLINK(1)", "0.00", "0.00", "0.00", "1.50", "0.00", "1.50"],  # overdue first
        ["EUR", "Bolt", "58.53", "0.00", "0.00", "0.00", "0.00", "58.53"],
        ["EUR", "Total", "58.53", "0.00", "0.00", "1.50", "0.00", "60.03"],
        ["JPY", "Bolt", "0", "0", "1500", "0", "0", "1500"],
        ["JPY", "Total", "0", "0", "1500", "0", "0", "1500"],
    ]
    assert csv_filename(report.entity_code, report.as_of) == "ar-aging-DE01-2026-11-26.csv"


def test_dso_waits_for_a_whole_window_of_sales_history(db_session):
    """Day one: every invoice is of this month, so "open ÷ sales × 90" would say 90 days of nothing."""
    entity = make_entity()
    add_invoice(entity, "New", "100.00", days=-10, issue=AS_OF - timedelta(days=4))
    report = aging_report(entity, AS_OF)
    assert section(report).figures.dso is None and report.first_sale == AS_OF - timedelta(days=4)
    # A sale on the window's first day is history enough.
    add_invoice(entity, "Older", "100.00", days=-10, issue=AS_OF - timedelta(days=89))
    report = aging_report(entity, AS_OF)
    assert section(report).figures.dso == D("90.0") and report.first_sale is None
