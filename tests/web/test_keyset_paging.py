"""Every list pages by key (app/paging.py): walking Next to the end and Previous back shows each row exactly once,
in the order asked for; the filters and the order stay in the links; a bad page link or order is a 400."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Customer, Invoice
from app.paging import count_upto
from app.records.invoices import INVOICE_ORDER
from tests.factories import make_contract, make_entity
from tests.paging import count_text, page_link, walk
from tests.web.test_records_invoices import run_inline, set_auto_post

INVOICE_ROW = r'<td class="nowrap"><a href="/invoices/(\d+)">'
CUSTOMER_ROW = r'<td><a href="/customers/(\d+)">'


@pytest.fixture
def invoices(app):
    """About 60 invoices of three daily contracts: issued ones (numbered) and drafts (no number), many sharing
    an issue date, a due date, a total, a status or a customer, so that every order needs its tie-breaker."""
    with app.app_context():
        entity = make_entity()
        today = date.today()
        make_contract(entity, "D-1", start=today - timedelta(days=30), frequency="daily", customer="Acme")
        make_contract(entity, "D-2", start=today - timedelta(days=35), frequency="daily", customer="Bolt",
                      lines=[("Support", "1", "12.00", "19")])
        db.session.commit()
        run_inline(entity, today - timedelta(days=12))  # posted: numbered
        set_auto_post(False)
        make_contract(entity, "D-3", start=today - timedelta(days=10), frequency="daily", customer="Acme",
                      lines=[("Licence", "1", "49.00", "19")])
        db.session.commit()
        run_inline(entity, today)  # drafts: no number
        rows = db.session.execute(select(Invoice.id, Invoice.period_start, Invoice.number, Customer.name,
                                         Invoice.issue_date, Invoice.due_date, Invoice.total_amount, Invoice.status)
                                  .join(Customer, Customer.id == Invoice.customer_id)).all()
        assert len(rows) > 50 and any(r.number is None for r in rows) and any(r.number for r in rows)
        return rows


FIELDS = {"period": "period_start", "number": "number", "customer": "name", "issued": "issue_date",
          "due": "due_date", "total": "total_amount", "status": "status"}


def expected(rows, sort: str) -> list[str]:
    """The ids in the order `sort` ("-due"): NULL as the greatest value, the id breaking ties."""
    name = sort.lstrip("-")

    def key(row):
        value = getattr(row, FIELDS[name])
        return ((1, None) if value is None else (0, value)), row.id

    return [str(row.id) for row in sorted(rows, key=key, reverse=sort.startswith("-"))]


@pytest.mark.parametrize("sort", [s.name for s in INVOICE_ORDER.sorts] + [f"-{s.name}" for s in INVOICE_ORDER.sorts])
def test_the_invoice_list_walks_each_row_once_in_each_order(client_as, invoices, sort):
    forwards, backwards, urls = walk(client_as("viewer"), f"/invoices?sort={sort}", INVOICE_ROW)
    assert forwards == expected(invoices, sort)
    assert backwards == forwards
    assert len(urls) > 3 and all(f"sort={sort}" in url for url in urls)


def test_filters_and_order_stay_in_the_links(app, client_as, invoices):
    client = client_as("viewer")
    url = f"/invoices?customer={bolt_id(app)}&type=invoice&sort=-total"
    first = client.get(url).get_data(as_text=True)
    forwards, backwards, urls = walk(client, url, INVOICE_ROW)
    assert forwards == backwards == expected([r for r in invoices if r.name == "Bolt"], "-total")
    assert all("type=invoice" in u and "sort=-total" in u and "customer=" in u for u in urls)
    assert '<input type="hidden" name="sort" value="-total">' in first  # the filter form keeps the order too
    # the column headers keep the filters, drop the page link and sort the other way on the sorted column
    header = re.search(r'<a href="([^"]+)" class="sort sorted-descending" data-sort="total"', first)
    assert header and "sort=total" in header.group(1) and "type=invoice" in header.group(1)
    second = client.get(page_link(first, "next")).get_data(as_text=True)
    other = re.search(r'<a href="([^"]+)" class="sort" data-sort="due"', second).group(1)
    assert "after=" not in other and "sort=due" in other and "type=invoice" in other


def bolt_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Customer.id).where(Customer.name == "Bolt"))


def test_the_customer_list_walks_by_name_with_its_search(app, client_as):
    with app.app_context():
        entity = make_entity()
        db.session.add_all([Customer(legal_entity_id=entity.id, name=f"Zeta {n:02d}") for n in range(60)]
                           + [Customer(legal_entity_id=entity.id, name="Other")])
        db.session.commit()
        ids = {c.name: str(c.id) for c in db.session.scalars(select(Customer))}
    client = client_as("viewer")
    zetas = [ids[f"Zeta {n:02d}"] for n in range(60)]
    forwards, backwards, urls = walk(client, "/customers?q=zeta", CUSTOMER_ROW)
    assert forwards == backwards == zetas and all("q=zeta" in u for u in urls)
    forwards, backwards, _urls = walk(client, "/customers?q=zeta&sort=-name", CUSTOMER_ROW)
    assert forwards == backwards == zetas[::-1]
    assert count_text(client.get("/customers?q=zeta").get_data(as_text=True)) == "60 in all"


def test_the_count_stops_at_its_cap(app, invoices):
    with app.app_context():
        assert count_upto(select(Invoice.id), cap=10) == (10, True)
        assert count_upto(select(Invoice.id), cap=1000) == (len(invoices), False)


# ------------------------------------------------------------------ bad links are a 400 naming the problem
def test_a_changed_page_link_is_a_400_naming_it(client_as, invoices):
    client = client_as("viewer")
    link = page_link(client.get("/invoices?sort=due").get_data(as_text=True), "next")
    cursor = link.split("after=")[1].split("&")[0]
    broken = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    response = client.get(link.replace(cursor, broken))
    assert response.status_code == 400
    assert "after: this page link cannot be used: it is damaged" in response.get_data(as_text=True)
    other_order = client.get(link.replace("sort=due", "sort=total"))
    assert other_order.status_code == 400
    assert "made for the order &#39;due&#39;, not &#39;total&#39;" in other_order.get_data(as_text=True)
    both = client.get(f"/invoices?sort=due&after={cursor}&before={cursor}")
    assert both.status_code == 400 and "give one page link, not both" in both.get_data(as_text=True)
    garbage = client.get("/customers?before=not-a-cursor")
    assert garbage.status_code == 400 and "before: this page link cannot be used" in garbage.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/invoices?sort=bogus", "/contracts?sort=-nope", "/runs?sort=amount",
                                 "/customers?sort=email", "/bank?sort=payer"])
def test_an_unknown_order_is_a_400_saying_which_there_are(admin_client, invoices, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert "is not an order of this list; sort by" in response.get_data(as_text=True)


def test_the_audit_log_walks_newest_first_and_is_for_admins(app, client_as):
    with app.app_context():
        from app.audit import Actor, record
        from app.models import AuditEntry

        entity = make_entity()
        for n in range(55):
            record("customer.noted" if n % 2 else "invoice.noted", "customer", n, Actor.system(f"clerk {n % 3}"),
                   legal_entity_id=entity.id, n=n)
        db.session.commit()
        entries = list(db.session.scalars(select(AuditEntry).where(AuditEntry.legal_entity_id == entity.id)))
        newest = [str(e.id) for e in sorted(entries, key=lambda e: (e.at, e.id), reverse=True)]
        invoices = [str(e.id) for e in sorted(entries, key=lambda e: (e.at, e.id), reverse=True)
                    if e.action == "invoice.noted"]
    client = client_as("admin")
    forwards, backwards, _urls = walk(client, "/settings/audit-log", r'<tr id="audit-entry-(\d+)">')
    assert forwards == backwards == newest
    forwards, backwards, urls = walk(client, "/settings/audit-log?q=invoice.noted&sort=at", r'<tr id="audit-entry-(\d+)">')
    assert forwards == backwards == invoices[::-1] and all("q=invoice.noted" in u for u in urls)
    assert client_as("accountant").get("/settings/audit-log").status_code == 403
