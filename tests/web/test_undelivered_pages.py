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
    assert "Resend all 2 by e-mail" in accountant.get("/invoices?delivery=undelivered").get_data(as_text=True)
    response = accountant.post("/invoices/resend?delivery=undelivered")
    assert response.status_code == 302 and response.headers["Location"].endswith("/invoices?delivery=undelivered")
    assert accountant.post("/invoices/resend?delivery=undelivered").status_code == 302  # a second press
    with app.app_context():
        resends = db.session.scalars(select(InvoiceDelivery).where(InvoiceDelivery.kind == "resend")).all()
        assert sorted(db.session.get(Invoice, d.invoice_id).number for d in resends) == sorted(
            [numbers["unknown"], numbers["never"]])
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "invoice.resend_requested", AuditEntry.actor_label == "accountant@example.com")) == 2
        assert Queue("delivery", connection=get_redis()).count == 2
    assert client_as("viewer").post("/invoices/resend?delivery=undelivered").status_code == 403
