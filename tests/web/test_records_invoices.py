"""Invoice pages: list with filters and totals, detail with VAT summary and history, Post and Void per role."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit import Actor
from app.billing.references import creditor_reference, format_creditor_reference
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, Invoice
from tests.factories import make_contract, make_entity
from tests.paging import count_text, page_link

ROLES = ("viewer", "accountant", "admin")


def run_inline(entity, as_of):
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    execute_run(result.run.id, inline=True)


def set_auto_post(value):
    agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
    agent.configuration = {**agent.configuration, "auto_post": value}
    db.session.commit()


@pytest.fixture
def world(app):
    """Run #1 posted Bolt's EUR invoices (long overdue); run #2 left Starship's USD invoice a draft."""
    with app.app_context():
        entity = make_entity()
        old = date.today() - timedelta(days=120)
        make_contract(entity, "C-1", start=old, customer="Bolt", lines=[
            ("Subscription", "1", "49.00", "19.45"), ("Support", "2", "10.00", "7")])
        db.session.commit()
        run_inline(entity, old + timedelta(days=1))  # one invoice, due long ago
        starship = make_contract(entity, "C-2", start=date.today(), currency="USD",
                                 customer="Starship Technologies", lines=[("Licence", "1", "100", "0")])
        db.session.commit()
        set_auto_post(False)
        run_inline(entity, date.today())  # Bolt's later periods and Starship's, as drafts
        issued = db.session.scalar(select(Invoice).where(Invoice.status == "issued"))
        draft = db.session.scalar(select(Invoice).where(Invoice.contract_id == starship.id))
        drafts = list(db.session.scalars(select(Invoice).where(Invoice.status == "draft")))
        return {"issued": issued.id, "draft": draft.id, "drafts": len(drafts), "bolt": issued.customer_id,
                "starship": starship.customer_id, "number": issued.number}


def invoice(app, invoice_id):
    with app.app_context():
        return db.session.get(Invoice, invoice_id)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_list_and_detail(client_as, world, role):
    client = client_as(role)
    html = client.get("/invoices").get_data(as_text=True)
    assert world["number"] in html and "Draft" in html and "overdue" in html
    detail = client.get(f"/invoices/{world['issued']}").get_data(as_text=True)
    assert world["number"] in detail and "Bolt" in detail and "C-1" in detail
    # VAT per rate: 19.45 % of 49.00 and 7 % of 20.00; totals; who created it.
    assert "9,53\xa0€" in detail and "1,40\xa0€" in detail and "79,93\xa0€" in detail
    assert "created and posted as" in detail and "billing run #1" in detail
    assert ("Credit this invoice" in detail) == (role != "viewer")
    draft = client.get(f"/invoices/{world['draft']}").get_data(as_text=True)
    assert "Draft invoice" in draft and "created as a draft by billing run #2" in draft
    assert ("Post</button>" in draft) == (role != "viewer")


def test_the_detail_shows_the_payment_reference_of_an_issued_invoice_only(client_as, world):
    client = client_as("viewer")
    detail = client.get(f"/invoices/{world['issued']}").get_data(as_text=True)
    reference = format_creditor_reference(creditor_reference(world["number"]))
    assert f'<dd id="creditor-reference">{reference}</dd>' in detail
    draft = client.get(f"/invoices/{world['draft']}").get_data(as_text=True)
    assert 'id="creditor-reference"' not in draft and "Payment reference" not in draft


def test_unknown_invoice_is_404(client_as, world):
    assert client_as("viewer").get("/invoices/9999").status_code == 404


def test_filters_and_totals_per_currency(client_as, world):
    client = client_as("viewer")
    everything = client.get("/invoices").get_data(as_text=True)
    assert "in USD" in everything and "in EUR" in everything
    drafts = client.get("/invoices?status=draft").get_data(as_text=True)
    assert world["number"] not in drafts and ">Draft<" in drafts
    overdue = client.get("/invoices?overdue=1").get_data(as_text=True)
    assert world["number"] in overdue and "1 invoice in EUR" in overdue and "in USD" not in overdue
    usd = client.get(f"/invoices?customer={world['starship']}").get_data(as_text=True)
    assert "1 invoice in USD" in usd and "100,00\xa0$" in usd
    assert "in EUR" not in usd
    future = client.get(f"/invoices?period_from={date.today() + timedelta(days=400)}").get_data(as_text=True)
    assert "No invoice matches these filters" in future
    bad = client.get("/invoices?period_to=someday").get_data(as_text=True)
    assert "period to: &#39;someday&#39; is not a date (use DD.MM.YYYY or YYYY-MM-DD) — this filter is ignored." in bad


def test_htmx_partial_and_vary(client_as, world):
    client = client_as("viewer")
    partial = client.get("/invoices?status=issued", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert "<html" not in body and world["number"] in body and "Draft<" not in body
    assert "HX-Request" in partial.headers["Vary"]
    full = client.get("/invoices?status=issued")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_pagination(app, client_as, world):
    with app.app_context():
        entity = db.session.get(Invoice, world["issued"]).legal_entity
        make_contract(entity, "D-1", start=date.today() - timedelta(days=40), frequency="daily")
        db.session.commit()
        run_inline(entity, date.today())
    client = client_as("viewer")
    first = client.get("/invoices").get_data(as_text=True)
    assert page_link(first, "next") and not page_link(first, "prev")
    second = client.get(page_link(first, "next")).get_data(as_text=True)
    assert page_link(second, "prev") and not page_link(second, "next") and count_text(second) == count_text(first)


def test_viewer_cannot_post_or_credit(app, client_as, world):
    viewer = client_as("viewer")
    assert viewer.post(f"/invoices/{world['draft']}/post").status_code == 403
    assert viewer.post(f"/invoices/{world['issued']}/credit", data={"reason": "x"}).status_code == 403
    assert invoice(app, world["draft"]).status == "draft" and invoice(app, world["issued"]).status == "issued"


@pytest.mark.parametrize("role", ["accountant", "admin"])
def test_post_a_draft(app, client_as, world, role):
    client = client_as(role)
    response = client.post(f"/invoices/{world['draft']}/post", follow_redirects=True)
    posted = invoice(app, world["draft"])
    assert posted.status == "issued" and posted.number.endswith("-000002")  # the next number after run #1's
    html = response.get_data(as_text=True)
    assert f"Invoice posted as {posted.number}." in html and f"posted as {posted.number}" in html
    assert f"{role}@example.com" in html  # who posted it, in the history
    again = client.post(f"/invoices/{world['draft']}/post")
    assert again.status_code == 422 and "only a draft can be posted" in again.get_data(as_text=True)


def test_credit_needs_a_reason_and_links_both_ways(app, client_as, world):
    client = client_as("accountant")
    page = client.get(f"/invoices/{world['issued']}").get_data(as_text=True)
    assert "Credit this invoice" in page and "Void" not in page
    missing = client.post(f"/invoices/{world['issued']}/credit", data={"what": "all", "reason": " "})
    assert missing.status_code == 422 and "a reason is required" in missing.get_data(as_text=True)
    too_much = client.post(f"/invoices/{world['issued']}/credit",
                           data={"what": "amount", "amount": "100.00", "reason": "x"})
    assert too_much.status_code == 422 and "is more than the 79,93\xa0€ left to credit" in too_much.get_data(as_text=True)
    assert invoice(app, world["issued"]).status == "issued"
    done = client.post(f"/invoices/{world['issued']}/credit",
                       data={"what": "amount", "amount": "10.00", "reason": "Sent to the wrong customer"},
                       follow_redirects=True)
    html = done.get_data(as_text=True)
    number = f"DE01-CN-{date.today().year}-000001"  # issued today, in the credit notes' own series
    assert f"Credit note {number} issued for invoice {world['number']}" in html
    assert f"Credits invoice" in html and world["number"] in html and "Sent to the wrong customer" in html
    page = client.get(f"/invoices/{world['issued']}").get_data(as_text=True)
    assert 'id="credit-notes"' in page and number in page and "Left to credit: <strong>69,93\xa0€" in page
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.actor_label).where(AuditEntry.action == "invoice.credited")) == \
            "accountant@example.com"
    listing = client.get("/invoices?type=credit_note").get_data(as_text=True)
    assert number in listing and world["number"] not in listing.split("<tbody>")[1]


def test_a_voided_invoice_keeps_its_history_and_cannot_be_credited(app, client_as, world):
    from app.audit import Actor, record

    with app.app_context():
        voided = db.session.get(Invoice, world["issued"])
        voided.status, voided.amount_due, voided.void_reason = "void", Decimal(0), "Sent to the wrong customer"
        record("invoice.voided", "invoice", voided.id, Actor.system("finance"), reason="Sent to the wrong customer")
        db.session.commit()
    page = client_as("accountant").get(f"/invoices/{world['issued']}").get_data(as_text=True)
    assert "voided: Sent to the wrong customer" in page and "Credit this invoice" not in page


def test_empty_state_says_what_to_do(app, client_as):
    with app.app_context():
        make_entity()
        db.session.commit()
    html = client_as("viewer").get("/invoices").get_data(as_text=True)
    assert "No invoices yet — a billing run creates them" in html
