"""Drafts (auto_post off) can still be corrected or deleted; a posted invoice only by a credit note."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AgentDefinition, AuditEntry, Invoice
from app.records.entities import get_legal_entity_by_code
from tests.factories import make_contract, make_entity


def bill(entity, as_of=date(2026, 11, 26)):
    result = start_billing_run(entity, as_of, "cli", Actor.system("test"), enqueue=False)
    execute_run(result.run.id, inline=True)


@pytest.fixture
def draft_id(app):
    with app.app_context():
        agent = db.session.scalar(select(AgentDefinition).where(AgentDefinition.key == "billing_run"))
        agent.configuration = {**agent.configuration, "auto_post": False}
        entity = make_entity()
        make_contract(entity, "C-1", start=date(2026, 11, 1), customer="Bolt",
                      lines=[("Hosting", "1", "49.00", None, "DE_VAT_19")])
        db.session.commit()
        bill(entity)
        return db.session.scalar(select(Invoice.id))


def test_an_accountant_corrects_a_drafts_lines_and_the_totals_follow(app, client_as, draft_id):
    client = client_as("accountant")
    page = client.get(f"/invoices/{draft_id}").get_data(as_text=True)
    assert "Correct lines" in page and "Delete draft" in page
    form = client.get(f"/invoices/{draft_id}/edit").get_data(as_text=True)
    assert 'value="Hosting"' in form and '<option value="DE_VAT_19" selected>' in form
    response = client.post(f"/invoices/{draft_id}/edit", data={
        "lines-1-description": "Hosting", "lines-1-quantity": "1", "lines-1-unit_price": "49.00",
        "lines-1-tax_code": "DE_VAT_19", "lines-2-description": "Setup", "lines-2-quantity": "1",
        "lines-2-unit_price": "100", "lines-2-tax_code": "DE_VAT_7"})
    assert response.status_code == 302
    with app.app_context():
        invoice = db.session.get(Invoice, draft_id)
        assert (invoice.status, invoice.number) == ("draft", None)
        assert [(l.description, l.tax_code) for l in invoice.lines] == [("Hosting", "DE_VAT_19"), ("Setup", "DE_VAT_7")]
        assert (invoice.net_amount, invoice.tax_amount, invoice.total_amount) == (
            Decimal("149.00"), Decimal("16.31"), Decimal("165.31"))  # 9.31 + 7.00
        assert invoice.amount_due == invoice.total_amount
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "invoice.draft_updated"))
        assert entry.details["lines"][1] == ["Hosting: 1 × 49 at 19% (DE_VAT_19)", "Setup: 1 × 100 at 7% (DE_VAT_7)"]
    assert "draft corrected: Hosting" in client.get(f"/invoices/{draft_id}").get_data(as_text=True)


def test_a_bad_line_changes_nothing_and_says_where(app, client_as, draft_id):
    response = client_as("accountant").post(f"/invoices/{draft_id}/edit", data={
        "lines-1-description": "Hosting", "lines-1-quantity": "-1", "lines-1-unit_price": "49.00",
        "lines-1-tax_code": "NOPE"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="error-lines-1-quantity"' in html and "unknown tax code &#39;NOPE&#39;" in html
    with app.app_context():
        assert db.session.get(Invoice, draft_id).total_amount == Decimal("58.31")


def test_a_deleted_draft_is_gone_and_the_next_run_bills_its_period_again(app, client_as, draft_id):
    client = client_as("accountant")
    assert client_as("viewer").post(f"/invoices/{draft_id}/delete").status_code == 403
    response = client.post(f"/invoices/{draft_id}/delete")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Invoice, draft_id) is None
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "invoice.draft_deleted")) == 1
        bill(get_legal_entity_by_code("DE01"))
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_a_posted_invoice_is_neither_edited_nor_deleted(app, client_as, draft_id):
    client = client_as("accountant")
    assert client.post(f"/invoices/{draft_id}/post").status_code == 302
    assert client.get(f"/invoices/{draft_id}/edit").status_code == 404
    refused = client.post(f"/invoices/{draft_id}/delete")
    assert refused.status_code == 422
    assert "only a draft can be deleted; correct an issued invoice with a credit note" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Invoice, draft_id).status == "issued"


def test_drafts_are_not_receivables_on_the_invoice_list(app, client_as, draft_id):
    page = client_as("viewer").get("/invoices").get_data(as_text=True)
    assert "0,00\xa0€ due" in page  # the draft's 58,31 € is not owed by anybody yet
