"""The invoice list's E-mail filter: invoices not e-mailed, outcome unknown, failed; Resend them all."""
from datetime import date, timedelta

from rq import Queue
from sqlalchemy import func, select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Invoice, InvoiceDelivery
from app.models.types import utcnow
from app.queues import get_redis
from tests.confirming import confirm_fields
from tests.factories import make_contract, make_entity


def world(app) -> dict:
    """Three issued invoices, issued two hours ago: one e-mailed, one whose outcome is unknown, one never."""
    with app.app_context():
        entity = make_entity()
        for n in (1, 2, 3):
            make_contract(entity, f"C-{n}", start=date(2026, 11, 1), customer=f"Customer {n}")
        db.session.commit()
        run = start_billing_run(entity, date(2026, 11, 26), "cli", Actor.system("test"), enqueue=False).run
        execute_run(run.id, inline=True)
        db.session.execute(Invoice.__table__.update().values(posted_at=utcnow() - timedelta(hours=2)))
        sent, unknown, never = db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
        db.session.add_all([
            InvoiceDelivery(invoice_id=sent.id, kind="auto", status="sent", attempts=1, sent_at=utcnow()),
            InvoiceDelivery(invoice_id=unknown.id, kind="auto", status="unknown", attempts=1,
                            error="the delivery stopped while the e-mail was being handed to the SMTP server"),
        ])
        db.session.commit()
        return {"sent": sent.number, "unknown": unknown.number, "never": never.number, "unknown_id": unknown.id}


def test_the_filter_lists_what_was_not_e_mailed_and_what_is_unknown(app, client_as):
    numbers = world(app)
    page = client_as("viewer").get("/invoices?delivery=undelivered").get_data(as_text=True)
    assert numbers["unknown"] in page and numbers["never"] in page and numbers["sent"] not in page
    assert "2 invoices issued more than 60 minutes ago" in page
    assert "Resend all" not in page  # a viewer cannot resend
    unknown = client_as("viewer").get("/invoices?delivery=unknown").get_data(as_text=True)
    assert numbers["unknown"] in unknown and numbers["never"] not in unknown
    assert "check with the customers" in unknown
    detail = client_as("viewer").get(f"/invoices/{numbers['unknown_id']}").get_data(as_text=True)
    assert "outcome unknown" in detail and "check with the customer whether the e-mail arrived, then Resend" in detail


def test_resend_all_queues_one_resend_each_and_is_audited(app, client_as):
    numbers = world(app)
    accountant = client_as("accountant")
    listing = accountant.get("/invoices?delivery=undelivered").get_data(as_text=True)
    assert "Resend all 2 by e-mail" in listing and 'href="/invoices/resend?delivery=undelivered"' in listing
    step = accountant.get("/invoices/resend?delivery=undelivered").get_data(as_text=True)
    fields = confirm_fields(step, "resend-confirm")
    response = accountant.post("/invoices/resend?delivery=undelivered", data=fields)
    assert response.status_code == 302 and response.headers["Location"].endswith("/invoices?delivery=undelivered")
    again = accountant.post("/invoices/resend?delivery=undelivered", data=fields)  # a second press of the same step
    assert again.status_code == 409 and "changed since the preview was made" in again.get_data(as_text=True)
    with app.app_context():
        resends = db.session.scalars(select(InvoiceDelivery).where(InvoiceDelivery.kind == "resend")).all()
        assert sorted(db.session.get(Invoice, d.invoice_id).number for d in resends) == sorted(
            [numbers["unknown"], numbers["never"]])
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "invoice.resend_requested", AuditEntry.actor_label == "accountant@example.com")) == 2
        assert Queue("delivery", connection=get_redis()).count == 2
    assert client_as("viewer").post("/invoices/resend?delivery=undelivered").status_code == 403


def test_resend_all_first_shows_how_many_invoices_their_totals_and_customers(app, client_as):
    numbers = world(app)
    accountant = client_as("accountant")
    step = accountant.get("/invoices/resend?delivery=undelivered")
    html = step.get_data(as_text=True)
    assert step.status_code == 200 and "E-mail these invoices again?" in html
    assert '<dd id="resend-count">2</dd>' in html and '<dd id="resend-customers">2</dd>' in html
    assert '<span class="nowrap" data-currency="EUR">117,06\xa0€</span>' in html
    assert numbers["unknown"] in html and numbers["never"] in html and numbers["sent"] not in html
    assert ">Resend 2 by e-mail</button>" in html and 'id="resend-cancel"' in html
    unknown = accountant.get("/invoices/resend?delivery=unknown").get_data(as_text=True)
    assert '<dd id="resend-count">1</dd>' in unknown and "may have the e-mail already" in unknown
    assert client_as("viewer").get("/invoices/resend?delivery=undelivered").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InvoiceDelivery).where(
            InvoiceDelivery.kind == "resend")) == 0  # looking sends nothing


def test_resend_all_without_its_confirm_sends_nothing_and_the_confirm_is_audited(app, client_as):
    world(app)
    accountant = client_as("accountant")
    bare = accountant.post("/invoices/resend?delivery=undelivered")
    assert bare.status_code == 409 and "Nothing was sent: nothing was confirmed yet" in bare.get_data(as_text=True)
    forged = accountant.post("/invoices/resend?delivery=undelivered", data={"confirm_token": "forged"})
    assert forged.status_code == 409 and "is not one this page gave out" in forged.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InvoiceDelivery).where(
            InvoiceDelivery.kind == "resend")) == 0
    fields = confirm_fields(bare.get_data(as_text=True), "resend-confirm")  # the step shown again can be confirmed
    assert accountant.post("/invoices/resend?delivery=undelivered", data=fields).status_code == 302
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.bulk_resend_confirmed"))
        assert entry.actor_label == "accountant@example.com"
        assert entry.details["invoices"] == 2 and entry.details["totals"] == {"EUR": "117.06"}
