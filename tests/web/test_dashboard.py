"""The dashboard shows what a finance lead looks at first: open and overdue AR, this month's billing, MRR/ARR,
the last run that billed something, and what needs a person."""
from datetime import date
from decimal import Decimal

from babel.numbers import format_currency
from lxml import html
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import Collection, Invoice
from tests.factories import make_contract, make_entity

ACTOR = Actor.system("test")


def figure(page: str, element_id: str) -> str:
    return " ".join(html.fromstring(page).get_element_by_id(element_id).text_content().split())


def test_the_dashboard_shows_this_months_billing_mrr_and_the_last_run_that_billed(app, admin_client):
    with app.app_context():
        entity = make_entity("DE01")  # de_DE, Europe/Berlin
        today = entity.today()
        make_contract(entity, "C-MONTH", start=today.replace(day=1), customer="Monthly GmbH")  # 49.00 a month
        make_contract(entity, "C-YEAR", start=today.replace(day=1), frequency="annual", customer="Yearly AG",
                      lines=[("Licence", 1, Decimal("1200.00"), Decimal("19"))])
        make_contract(entity, "C-ENDED", start=date(2020, 1, 1), end=date(2021, 1, 1), customer="Old KG")
        db.session.commit()
        for _ in range(2):  # the second run finds nothing left to bill
            run = start_billing_run(entity, today, "cli", ACTOR, enqueue=False).run
            execute_run(run.id, inline=True)
        billed = sum((i.total_amount for i in db.session.scalars(
            select(Invoice).where(Invoice.issue_date >= today.replace(day=1)))), Decimal(0))
    page = admin_client.get("/").get_data(as_text=True)
    assert figure(page, "mrr") == "149,00 €"  # 49 + 1,200 / 12; the ended contract is not revenue
    assert figure(page, "arr") == "ARR 1.788,00 €, net of VAT"
    assert figure(page, "billed-this-month") == format_currency(billed, "EUR", locale="de_DE").replace("\xa0", " ")
    assert figure(page, "last-run") == "#1"  # not the empty #2 …
    assert figure(page, "latest-run").startswith("Run #2") and "found nothing to bill" in page  # … which is named


def test_what_needs_a_person_is_counted_and_linked(app, admin_client):
    app.config["UNDELIVERED_AFTER_MINUTES"] = 0
    try:
        with app.app_context():
            entity = make_entity("DE01")
            make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt")
            db.session.commit()
            run = start_billing_run(entity, date(2026, 11, 26), "cli", ACTOR, enqueue=False).run
            execute_run(run.id, inline=True)
            invoice = db.session.scalar(select(Invoice))
            db.session.add(Collection(invoice_id=invoice.id, method="manual", status="failed", attempts=3))
            db.session.commit()
        page = admin_client.get("/").get_data(as_text=True)
    finally:
        app.config["UNDELIVERED_AFTER_MINUTES"] = 60
    assert figure(page, "attention") == "2"
    assert figure(page, "attention-undelivered") == "1 invoice(s) not e-mailed"
    assert figure(page, "attention-collections") == "1 collection(s) to decide on"
