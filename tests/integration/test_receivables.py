"""The running totals the AR aging report reads (open balances per customer, credit sales per day) always equal a
full recomputation from the invoices, whatever changed them; and the report built on them gives the figures a
plain count of every open invoice gives, for any as-of date."""
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.audit import Actor
from app.extensions import db
from app.models import DailySales, Invoice, OpenBalance
from app.payments.ledger import record_payment, reverse_payment
from app.reports.aging import (BUCKET_KEYS, SALES_STATUSES, aging_csv_stream, aging_page, aging_report,
                               aging_table_rows, bucket_for, days_past_due)
from tests.factories import make_contract, make_entity
from tests.integration.test_aging import AS_OF, add_invoice
from tests.integration.test_credit_notes import credit, run

ADMIN = Actor.system("test")
CENT = Decimal("0.0001")


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)  # SQLite hands back floats


def maintained() -> tuple[dict, dict]:
    balances = {(b.legal_entity_id, b.currency, b.customer_id): (_money(b.open_amount), b.open_invoices)
                for b in db.session.scalars(select(OpenBalance)) if b.open_invoices}
    sales = {(s.legal_entity_id, s.currency, s.issue_date): _money(s.amount)
             for s in db.session.scalars(select(DailySales)) if _money(s.amount)}
    return balances, sales


def recomputed() -> tuple[dict, dict]:
    balances: dict = defaultdict(lambda: (Decimal(0), 0))
    sales: dict = defaultdict(Decimal)
    for i in db.session.scalars(select(Invoice)):
        if i.is_open:
            amount, count = balances[(i.legal_entity_id, i.currency, i.customer_id)]
            balances[(i.legal_entity_id, i.currency, i.customer_id)] = (amount + _money(i.amount_due), count + 1)
        if i.status in SALES_STATUSES:
            sales[(i.legal_entity_id, i.currency, i.issue_date)] += _money(
                -i.total_amount if i.is_credit_note else i.total_amount)
    return dict(balances), {key: amount for key, amount in sales.items() if amount}


def assert_totals_agree():
    db.session.expire_all()
    assert maintained() == recomputed()


def expected_aging(entity_id: int, as_of: date) -> dict:
    """(currency, customer) → [bucket amounts …, total, invoices], counted invoice by invoice."""
    rows: dict = {}
    for i in db.session.scalars(select(Invoice).where(Invoice.legal_entity_id == entity_id)):
        if i.is_open and i.issue_date <= as_of:
            row = rows.setdefault((i.currency, i.customer_id), [Decimal(0)] * len(BUCKET_KEYS) + [Decimal(0), 0])
            row[BUCKET_KEYS.index(bucket_for(days_past_due(i.due_date, as_of)).key)] += _money(i.amount_due)
            row[-2] += _money(i.amount_due)
            row[-1] += 1
    return rows


def assert_report_agrees(entity, as_of: date):
    report = aging_report(entity, as_of)
    shown = {(s.currency, r.customer_id): [*(_money(r.amounts[k]) for k in BUCKET_KEYS), _money(r.total),
                                           r.invoice_count] for s in report.sections for r in s.rows}
    assert shown == expected_aging(entity.id, as_of), as_of
    for section in report.sections:  # largest overdue first, then the largest total
        keys = [(r.total - r.amounts["current"], r.total) for r in section.rows]
        assert keys == sorted(keys, reverse=True)
    page = aging_page(entity, as_of, limit=2)
    assert [(s.currency, s.totals, s.figures, s.customers) for s in page.sections] == [
        (s.currency, s.totals, s.figures, len(s.rows)) for s in report.sections]
    assert [s.rows for s in page.sections] == [s.rows[:2] for s in report.sections]
    assert list(aging_csv_stream(entity, as_of)) == list(aging_table_rows(report))


def test_totals_follow_runs_payments_reversals_credit_notes_and_voids(db_session):
    entity = make_entity()
    make_contract(entity, "C-1", start=date(2026, 9, 1), customer="Acme")
    make_contract(entity, "C-2", start=date(2026, 10, 1), customer="Acme")
    make_contract(entity, "C-3", start=date(2026, 9, 1), customer="Bolt", currency="USD")
    make_contract(entity, "C-4", start=date(2026, 8, 1), customer="Cargo")
    db.session.commit()
    run(entity, date(2026, 10, 26))
    assert_totals_agree()
    run(entity, AS_OF)
    assert_totals_agree()
    issued = list(db.session.scalars(select(Invoice).where(Invoice.status == "issued").order_by(Invoice.id)))
    assert len(issued) >= 8

    first, second, third, fourth = issued[:4]
    record_payment(first.id, first.amount_due, AS_OF, "bank 1", ADMIN)  # paid in full
    part = record_payment(second.id, Decimal("10.00"), AS_OF, "bank 2", ADMIN)  # partly
    db.session.commit()
    assert_totals_agree()
    reverse_payment(part.id, "wrong invoice", ADMIN)
    db.session.commit()
    assert_totals_agree()

    credit(third, amount=Decimal("8.53"), today=AS_OF)  # a partial credit note
    credit(fourth, today=AS_OF)  # credited in full
    assert_totals_agree()

    void = issued[4]
    void.status, void.void_reason = "void", "issued by mistake"
    db.session.commit()
    assert_totals_agree()
    for as_of in (date(2026, 10, 1), date(2026, 10, 30), AS_OF, date(2027, 3, 31)):
        assert_report_agrees(entity, as_of)


def test_invoices_written_directly_and_every_bucket_edge(db_session):
    """Invoices changed by plain UPDATEs and DELETEs (a bank import, a fix in SQL) keep the totals right too;
    an invoice issued after the as-of date is left out, one due on a bucket's first or last day lands in it."""
    entity = make_entity()
    old = [add_invoice(entity, f"Customer {days % 3}", f"{100 + days}.25", days=days)
           for days in (-30, -1, 0, 1, 30, 31, 60, 61, 90, 91, 400)][-1]
    add_invoice(entity, "Later", "70.00", due=AS_OF + timedelta(days=20), issue=AS_OF + timedelta(days=5))
    add_invoice(entity, "Customer 1", "5.00", days=3, status="draft")
    add_invoice(entity, "Customer 1", "999", days=45, currency="JPY")
    usd = add_invoice(entity, "Customer 2", "12.00", days=10, currency="USD")
    db.session.commit()
    assert_totals_agree()
    assert_report_agrees(entity, AS_OF)
    assert {s.currency for s in aging_report(entity, AS_OF).sections} == {"EUR", "JPY", "USD"}
    assert all(r.customer_name != "Later" for s in aging_report(entity, AS_OF).sections for r in s.rows)

    db.session.execute(Invoice.__table__.update().where(Invoice.id == usd.id).values(amount_due=Decimal("2.50")))
    db.session.execute(Invoice.__table__.update().where(Invoice.id == old.id).values(status="void"))
    db.session.execute(Invoice.__table__.delete().where(Invoice.number.is_(None)))
    db.session.commit()
    assert_totals_agree()
    for as_of in (AS_OF - timedelta(days=500), AS_OF, AS_OF + timedelta(days=5), AS_OF + timedelta(days=200)):
        assert_report_agrees(entity, as_of)


def test_the_page_searches_and_slices_the_customers(db_session):
    entity = make_entity()
    for n in range(7):
        add_invoice(entity, f"Acme {n}", f"{10 * (n + 1)}.00", days=40)
        add_invoice(entity, f"Bolt {n}", f"{n + 1}.00", days=-5)
    db.session.commit()
    page = aging_page(entity, AS_OF, limit=3)
    eur, = page.sections
    assert [r.customer_name for r in eur.rows] == ["Acme 6", "Acme 5", "Acme 4"]  # overdue first
    assert (eur.customers, eur.found, eur.next_offset, eur.totals.invoice_count) == (14, 14, 3, 14)
    searched, = aging_page(entity, AS_OF, search="bolt", limit=5).sections
    assert [r.customer_name for r in searched.rows] == ["Bolt 6", "Bolt 5", "Bolt 4", "Bolt 3", "Bolt 2"]
    assert (searched.found, searched.next_offset, searched.totals.total) == (7, 5, eur.totals.total)
    nobody, = aging_page(entity, AS_OF, search="100%_").sections  # LIKE's wildcards are plain characters
    assert (nobody.rows, nobody.found, nobody.next_offset) == ([], 0, None)
