"""Invoice delivery with a real SMTP server, real WeasyPrint and a real RQ worker."""
import io
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader
from rq.job import Job
from sqlalchemy import func, select

from app.agents.events import relay_outbox
from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.agents.builtin.invoice_delivery import deliver
from app.delivery.service import DeliveryFailed, request_resend, settle_lost_attempts
from app.extensions import db
from app.models import AuditEntry, Customer, Event, Invoice, InvoiceDelivery
from app.models.types import utcnow
from app.queues import get_redis
from tests.conftest import ROOT
from tests.factories import make_contract, make_entity

ADMIN = Actor.system("test")
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"


def bill_walkthrough():
    entity = make_entity(locale="de_DE")
    make_contract(entity, "C-1001", start=date(2026, 11, 1), customer="Bolt")
    make_contract(entity, "C-1002", start=date(2026, 11, 1), customer="Starship Technologies")
    db.session.commit()
    run = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False).run
    execute_run(run.id, inline=True)
    return entity, run


def work_off(sink, *queues):
    env = {**os.environ, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port)}
    result = subprocess.run([sys.executable, "worker.py", "--burst", *queues], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def attachment(message):
    part, = [p for p in message.iter_attachments()]
    return part.get_filename(), part.get_content()


def test_a_billing_run_ends_with_one_email_per_customer_with_a_valid_e_invoice(app, db_session, mail_sink):
    entity, run = bill_walkthrough()
    assert relay_outbox().jobs == 4  # 2 invoices × (delivery + collection)
    work_off(mail_sink, "delivery", "collection")
    messages = mail_sink.messages()
    assert sorted(m["To"] for m in messages) == ["c-1001@example.com", "c-1002@example.com"]
    invoices = {i.customer.email: i for i in db.session.scalars(select(Invoice))}
    for message in messages:
        invoice = invoices[message["To"]]
        assert message["Subject"] == f"Invoice {invoice.number} from DE01 GmbH"
        name, pdf = attachment(message)
        assert name == f"Invoice-{invoice.number}.pdf" and pdf.startswith(b"%PDF")
        text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert invoice.number in text and "58,53" in text
        xml_name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
        assert xml_name == "factur-x.xml"
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        grand = etree.fromstring(xml).find(f".//{RAM}GrandTotalAmount").text
        assert Decimal(grand) == invoice.total_amount == Decimal("58.53")
    db.session.expire_all()
    assert {d.status for d in db.session.scalars(select(InvoiceDelivery))} == {"sent"}
    steps = db.session.scalars(select(AuditEntry.action).where(AuditEntry.billing_run_id == run.id)).all()
    assert steps.count("workflow.step_fired") == 4 and steps.count("invoice.delivered") == 2


def test_the_same_event_delivered_twice_sends_one_email(app, db_session, mail_sink):
    bill_walkthrough()
    relay_outbox()
    work_off(mail_sink, "delivery", "collection")
    db.session.execute(Event.__table__.update().values(dispatched_at=None))
    db.session.commit()
    assert relay_outbox().jobs == 4
    work_off(mail_sink, "delivery", "collection")
    assert len(mail_sink.messages()) == 2


def test_smtp_down_then_up_delivers_once(app, db_session, mail_sink):
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    mail_sink.stop()
    with pytest.raises(DeliveryFailed):
        deliver(invoice.id, final_attempt=False)
    delivery = db.session.scalar(select(InvoiceDelivery))
    assert delivery.status == "retrying" and "SMTP" in delivery.error and delivery.attempts == 1
    mail_sink.start()
    assert deliver(invoice.id, final_attempt=False).status == "sent"
    assert deliver(invoice.id).message == "already sent: nothing to do"
    assert len(mail_sink.messages()) == 1
    db.session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_the_last_failed_attempt_is_reported_on_the_invoice_and_in_the_run_audit(app, db_session, mail_sink):
    entity, run = bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    mail_sink.stop()
    with pytest.raises(DeliveryFailed):
        deliver(invoice.id, final_attempt=True)
    assert db.session.scalar(select(InvoiceDelivery)).status == "failed"
    failed = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.delivery_failed"))
    assert failed.billing_run_id == run.id and "SMTP" in failed.details["reason"]


def test_a_customer_without_email_is_reported_not_retried(app, db_session, mail_sink):
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    invoice.customer.email = None
    db.session.commit()
    outcome = deliver(invoice.id, final_attempt=False)  # no exception: nothing to retry
    assert outcome.status == "no_email" and "has no e-mail address" in outcome.message
    assert mail_sink.messages() == []


def test_delivery_jobs_retry_with_backoff(app, db_session):
    entity, run = bill_walkthrough()
    relay_outbox()
    job_id = next(j for j in get_redis().lrange("rq:queue:delivery", 0, -1)).decode()
    job = Job.fetch(job_id, connection=get_redis())
    assert job.retries_left == 3 and job.retry_intervals == [60, 300, 1800]


def test_resend_sends_again_and_is_audited(app, db_session, mail_sink):
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    deliver(invoice.id)
    delivery = request_resend(invoice, Actor("user", "ann@example.com", None))
    db.session.commit()
    assert deliver(invoice.id, delivery_id=delivery.id).status == "sent"
    assert len(mail_sink.messages()) == 2
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "invoice.resend_requested", AuditEntry.actor_label == "ann@example.com")) == 1


def test_an_attempt_left_in_flight_becomes_outcome_unknown_and_nothing_is_sent(app, db_session, mail_sink):
    """A worker died while handing the e-mail to the SMTP server: it may have arrived. The watchdog
    reports the outcome as unknown, once; nothing sends it again by itself."""
    entity, run = bill_walkthrough()
    first, second = db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
    now = utcnow()
    lost = InvoiceDelivery(invoice_id=first.id, kind="auto", status="sending", attempts=1,
                           attempt_started_at=now - timedelta(minutes=10), created_at=now - timedelta(minutes=10))
    current = InvoiceDelivery(invoice_id=second.id, kind="auto", status="sending", attempts=1,
                              attempt_started_at=now - timedelta(seconds=5), created_at=now - timedelta(seconds=5))
    db.session.add_all([lost, current])
    db.session.commit()

    assert settle_lost_attempts(now) == 1
    db.session.expire_all()
    assert (lost.status, current.status) == ("unknown", "sending")
    assert "Check with the customer, then press Resend" in lost.error
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.delivery_unknown"))
    assert entry.subject_id == first.id and entry.billing_run_id == run.id and entry.actor_label == "delivery watchdog"
    assert settle_lost_attempts(now) == 0  # reported once
    # Whatever runs the delivery again (RQ's retry, a re-queued event) sends nothing: a person decides.
    assert deliver(first.id).status == "unknown"
    assert deliver(second.id).status == "in_flight"  # another worker is on it right now
    assert mail_sink.messages() == []


def test_an_unexpected_error_is_recorded_as_a_failed_attempt_with_its_reason(app, db_session, mail_sink):
    """A customer name with a line break once stopped the delivery with a ValueError and left it `sending`."""
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    # Written past the field rules (which refuse it now), as rows from before them may be.
    db.session.execute(Customer.__table__.update().where(Customer.id == invoice.customer_id)
                       .values(email="c-1001@example.com\r\nBcc: everyone@example.com"))
    db.session.commit()
    outcome = deliver(invoice.id)
    assert outcome.status == "failed"
    delivery = db.session.scalar(select(InvoiceDelivery))
    assert delivery.status == "failed" and delivery.attempt_started_at is None and delivery.attempts == 1
    assert "could not be prepared" in delivery.error and "ValueError" in delivery.error
    assert mail_sink.messages() == []


def test_a_resend_e_mails_again_but_a_late_automatic_delivery_does_not(app, db_session, mail_sink):
    """The watchdog may enqueue the automatic delivery again after a person resent the invoice."""
    bill_walkthrough()
    invoice = db.session.scalar(select(Invoice).order_by(Invoice.id))
    delivery = request_resend(invoice, Actor("user", "ann@example.com", None))
    db.session.commit()
    assert deliver(invoice.id, delivery_id=delivery.id).status == "sent"
    assert deliver(invoice.id).status == "skipped"
    assert len(mail_sink.messages()) == 1
