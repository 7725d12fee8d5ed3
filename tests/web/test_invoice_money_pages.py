"""The invoice page's delivery and payment part: download the PDF, resend, record payments."""
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Invoice, InvoiceDelivery
from app.queues import get_redis
from tests.factories import make_contract, make_entity


@pytest.fixture
def invoice_id(app):
    with app.app_context():
        entity = make_entity(locale="de_DE")
        make_contract(entity, "C-1001", start=date(2026, 11, 1), customer="Bolt")
        db.session.commit()
        run = start_billing_run(entity, date(2026, 11, 26), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        return db.session.scalar(select(Invoice.id))


@pytest.mark.parametrize("role", ["viewer", "accountant", "admin"])
def test_everyone_can_download_the_pdf(client_as, invoice_id, role):
    response = client_as(role).get(f"/invoices/{invoice_id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename=Invoice-DE01-2026-000001.pdf' in response.headers["Content-Disposition"]
    import io

    assert "DE01-2026-000001" in PdfReader(io.BytesIO(response.data)).pages[0].extract_text()


def test_the_page_shows_delivery_and_collection_state(client_as, invoice_id):
    page = client_as("viewer").get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert "Download PDF" in page and "Not e-mailed yet" in page
    assert "Resend by e-mail" not in page and "Record payment" not in page  # viewers act on nothing


def test_resend_is_queued_and_audited(app, client_as, invoice_id):
    response = client_as("accountant").post(f"/invoices/{invoice_id}/resend")
    assert response.status_code == 302
    with app.app_context():
        delivery = db.session.scalar(select(InvoiceDelivery))
        assert (delivery.kind, delivery.requested_by) == ("resend", "accountant@example.com")
        assert get_redis().llen("rq:queue:delivery") == 1
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.resend_requested"))
    assert client_as("viewer").post(f"/invoices/{invoice_id}/resend").status_code == 403


def test_partial_then_full_payment_closes_the_invoice_and_the_aging_follows(app, client_as, invoice_id):
    client = client_as("accountant")
    aging = client.get("/reports/aging?as_of=2026-11-30").get_data(as_text=True)
    assert "Bolt" in aging
    response = client.post(f"/invoices/{invoice_id}/payments",
                           data={"amount": "20.00", "received_on": "2026-11-28", "reference": "stmt 7"})
    assert response.status_code == 302
    page = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert "38,53" in page and "stmt 7" in page
    client.post(f"/invoices/{invoice_id}/payments", data={"amount": "38.53", "received_on": "2026-11-29"})
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status, invoice.amount_due) == ("paid", Decimal("0"))
    aging = client.get("/reports/aging?as_of=2026-11-30").get_data(as_text=True)
    assert "Bolt" not in aging


@pytest.mark.parametrize("data, message", [
    ({"amount": "100", "received_on": "2026-11-28"}, "is more than the 58.53 EUR still due"),
    ({"amount": "-1", "received_on": "2026-11-28"}, "-1 is negative"),
    ({"amount": "ten", "received_on": "2026-11-28"}, "is not a number"),
    ({"amount": "10", "received_on": "11/28/2026"}, "is not a date (use DD.MM.YYYY or YYYY-MM-DD)"),  # de_DE
    ({"amount": "10", "received_on": "9999-12-31"}, "9999-12-31 is outside the dates Arbill takes"),
    # A reference longer than its column was a StringDataRightTruncation on PostgreSQL; CR/LF a broken line.
    ({"amount": "10", "received_on": "2026-11-28", "reference": "R" * 141},
     "reference is 141 characters long; at most 140 fit"),
    ({"amount": "10", "received_on": "2026-11-28", "reference": "SEPA\r\nCT 4711"},
     "reference contains a line break (CR) at character 5"),
])
def test_a_bad_payment_is_refused_inline_and_changes_nothing(app, client_as, invoice_id, data, message):
    response = client_as("accountant").post(f"/invoices/{invoice_id}/payments", data=data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).amount_due == Decimal("58.53")


def test_viewers_cannot_record_payments(client_as, invoice_id):
    assert client_as("viewer").post(f"/invoices/{invoice_id}/payments", data={"amount": "1"}).status_code == 403
