"""The Dunning Agent end to end: real PostgreSQL (or SQLite), real Redis, a real RQ worker, real WeasyPrint and
the real SMTP sink."""
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.agents.runs import run_inline
from app.agents.settings import agent_row
from app.audit import Actor
from app.billing.references import format_creditor_reference
from app.dunning import holds, service
from app.extensions import db
from app.models import AgentRun, AuditEntry, Collection, Customer, DunningNotice, DunningNoticeItem, Invoice
from app.payments.ledger import record_payment
from app.queues import get_queue
from app.records.credit_notes import CreditRequest, credit_invoice
from tests.integration.test_delivery import work_off
from tests.web.test_records_invoices import run_inline as bill
from tests.factories import make_contract, make_entity

ADMIN = Actor.system("test")
START = date.today() - timedelta(days=90)
DUE = START + timedelta(days=14)  # the entity's payment terms


def day(days_past_due: int) -> date:
    return DUE + timedelta(days=days_past_due)


@pytest.fixture
def world(app, db_session):
    """DE01 (German, IBAN, 9.12 % interest) billed one annual invoice each to Bolt, Starship and Cargo on START."""
    entity = make_entity(locale="de_DE", iban="DE89370400440532013000", bic="COBADEFFXXX")
    entity.late_interest_rate = Decimal("9.12")
    for reference, name in (("C-1", "Bolt"), ("C-2", "Starship Technologies"), ("C-3", "Cargo")):
        make_contract(entity, reference, start=START, frequency="annual", customer=name)
    db.session.commit()
    bill(entity, START)
    invoices = {i.customer.name: i for i in db.session.scalars(select(Invoice).where(Invoice.status == "issued"))}
    assert len(invoices) == 3 and {i.due_date for i in invoices.values()} == {DUE}
    return entity, invoices


def levels_of(invoice) -> list[int]:
    return sorted(db.session.scalars(select(DunningNoticeItem.level).where(DunningNoticeItem.invoice_id == invoice.id)))


def pdf_text(message) -> str:
    part, = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_filename().startswith("Reminder-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(part.get_content())).pages)
    return text.replace("\u00a0", " ")  # amounts and percentages carry a no-break space


def test_preview_then_run_sends_level_1_with_the_pdf_and_a_rerun_sends_nothing(world, mail_sink):
    entity, invoices = world
    preview = service.plan(entity, day(7))
    assert [(n.customer.name, n.level) for n in preview.notices] == [
        ("Bolt", 1), ("Cargo", 1), ("Starship Technologies", 1)]
    assert service.plan(entity, day(6)).notices == []  # not 7 days past due yet
    bolt = preview.notices[0]
    # 58.53 × 9.12 % × 7 / 365 = 0.1023… → 0.10; level 1's fee is 0
    assert (bolt.open_amount, bolt.fee, bolt.interest, bolt.total) == (
        Decimal("58.53"), Decimal("0"), Decimal("0.10"), Decimal("58.63"))
    assert db.session.scalar(select(func.count()).select_from(DunningNotice)) == 0  # the preview wrote nothing

    result = service.run(entity, day(7), ADMIN)
    assert len(result.written) == 3 and {n.status for n in result.written} == {"queued"}
    work_off(mail_sink, "delivery")
    messages = {m["To"]: m for m in mail_sink.messages()}
    assert sorted(messages) == ["c-1@example.com", "c-2@example.com", "c-3@example.com"]
    message = messages["c-1@example.com"]
    assert message["Subject"] == "Zahlungserinnerung von DE01 GmbH: 58,63\u00a0€ überfällig"
    body = message.get_body().get_content()
    assert invoices["Bolt"].number in body and "DE89 3704 0044 0532 0130 00" in body
    text = pdf_text(message)
    assert "Zahlungserinnerung" in text and invoices["Bolt"].number in text
    assert "58,53 €" in text and "0,10 €" in text and "58,63 €" in text and "9,12 %" in text
    reference = format_creditor_reference(invoices["Bolt"].creditor_reference)
    assert "DE89 3704 0044 0532 0130 00" in text and reference in text, text
    db.session.expire_all()
    assert {n.status for n in db.session.scalars(select(DunningNotice))} == {"sent"}

    again = service.run(entity, day(7), ADMIN)
    assert again.written == [] and again.retried == []
    later = service.run(entity, day(8), ADMIN)  # the next day: level 1 is done, level 2 not due
    assert later.written == []
    work_off(mail_sink, "delivery")
    assert len(mail_sink.messages()) == 3
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("dunning.%"))).all()
    assert actions.count("dunning.reminder_queued") == 3 and actions.count("dunning.reminder_sent") == 3
    assert actions.count("dunning.invoice_reminded") == 3


def test_levels_follow_in_order_with_fees_and_paid_or_credited_invoices_drop_out(world, mail_sink):
    entity, invoices = world
    service.run(entity, day(7), ADMIN)
    record_payment(invoices["Starship Technologies"].id, invoices["Starship Technologies"].amount_due, day(10),
                   "transfer", ADMIN)
    credit_invoice(invoices["Cargo"], CreditRequest("goodwill"), ADMIN, today=day(10))
    db.session.commit()

    assert service.plan(entity, day(20)).notices == []  # level 2 is due at 21 days
    result = service.run(entity, day(21), ADMIN)
    assert [(n.customer.name, n.level, n.fee) for n in result.written] == [("Bolt", 2, Decimal("5.0000"))]
    assert levels_of(invoices["Bolt"]) == [1, 2]
    assert levels_of(invoices["Starship Technologies"]) == levels_of(invoices["Cargo"]) == [1]
    work_off(mail_sink, "delivery")
    level_2 = [m for m in mail_sink.messages() if m["Subject"].startswith("1. Mahnung")]
    assert [m["To"] for m in level_2] == ["c-1@example.com"]
    text = pdf_text(level_2[0])
    assert "5,00 €" in text and invoices["Starship Technologies"].number not in text

    service.run(entity, day(35), ADMIN)
    assert levels_of(invoices["Bolt"]) == [1, 2, 3]
    assert service.plan(entity, day(80)).notices == []  # no level after the last


def test_never_for_sepa_in_collection_disputed_or_held_customers(world, mail_sink):
    entity, invoices = world
    starship = invoices["Starship Technologies"].customer
    starship.payment_method, starship.iban = "sepa_debit", "DE02120300000000202051"
    starship.mandate_reference, starship.mandate_date = "M-1", START
    db.session.add(Collection(invoice_id=invoices["Starship Technologies"].id, method="sepa_debit", status="in_batch"))
    db.session.commit()
    holds.hold_customer(invoices["Bolt"].customer, "paused", "payment plan", ADMIN)
    holds.set_invoice_disputed(invoices["Cargo"], True, "wrong quantity", ADMIN)

    plan = service.plan(entity, day(7))
    assert plan.notices == []
    assert sorted((e.customer.name, e.reason) for e in plan.excluded) == [
        ("Bolt", "customer on hold (paused)"), ("Cargo", "invoice disputed"),
        ("Starship Technologies", "SEPA direct debit in collection")]
    assert service.run(entity, day(7), ADMIN).written == []

    # The collection failed for good, the hold is released, the dispute settled: all three are reminded.
    collection = db.session.scalar(select(Collection))
    collection.status = "flagged"
    db.session.commit()
    holds.release_customer(invoices["Bolt"].customer, ADMIN)
    holds.set_invoice_disputed(invoices["Cargo"], False, None, ADMIN)
    assert len(service.run(entity, day(8), ADMIN).written) == 3
    held = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.in_(
        ("dunning.customer_held", "dunning.customer_released", "dunning.invoice_disputed")))).all()
    assert sorted(held) == ["dunning.customer_held", "dunning.customer_released", "dunning.invoice_disputed"]


def test_a_customer_without_an_e_mail_address_is_reported_and_the_others_are_sent(world, mail_sink):
    entity, invoices = world
    invoices["Cargo"].customer.email = None
    db.session.commit()
    result = service.run(entity, day(7), ADMIN)
    assert sorted(n.customer.name for n in result.written) == ["Bolt", "Starship Technologies"]
    assert "Cargo: no e-mail address" in result.summary()
    service.send_pending(result.written)
    assert sorted(m["To"] for m in mail_sink.messages()) == ["c-1@example.com", "c-2@example.com"]
    # Once it has an address, the next run reminds it.
    invoices["Cargo"].customer.email = "cargo@example.com"
    db.session.commit()
    assert [n.customer.name for n in service.run(entity, day(8), ADMIN, enqueue=False).written] == ["Cargo"]


def test_a_refused_e_mail_is_failed_with_its_reason_and_the_next_run_sends_it(world, mail_sink, app):
    entity, _invoices = world
    result = service.run(entity, day(7), ADMIN, enqueue=False)
    saved = app.config["MAIL_PORT"]
    mail_sink.stop()
    try:
        assert set(service.send_pending(result.written)) == {"failed"}
    finally:
        mail_sink.start()
    db.session.expire_all()
    assert all(n.error and "SMTP" in n.error for n in db.session.scalars(select(DunningNotice)))
    again = service.run(entity, day(7), ADMIN, enqueue=False)
    assert again.written == [] and len(again.retried) == 3 and app.config["MAIL_PORT"] == saved
    assert set(service.send_pending(again.retried)) == {"sent"}
    assert len(mail_sink.messages()) == 3


def test_a_future_date_is_refused(world):
    entity, _ = world
    with pytest.raises(service.DunningRefused, match="after today"):
        service.run(entity, date.today() + timedelta(days=3), ADMIN)
    assert db.session.scalar(select(func.count()).select_from(DunningNotice)) == 0


def test_the_agent_run_sends_and_its_test_run_only_previews(world, mail_sink):
    entity, _ = world
    agent = agent_row("dunning")
    agent.enabled = True
    db.session.commit()
    test = run_inline(agent, entity, "test", ADMIN)
    assert test.status == "succeeded" and test.summary.startswith("a test run sends nothing: 3 reminder(s) due")
    assert db.session.scalar(select(func.count()).select_from(DunningNotice)) == 0
    assert len(get_queue("delivery")) == 0

    real = run_inline(agent, entity, "manual", ADMIN)  # as of today: all three at level 1
    assert real.status == "succeeded" and real.summary.startswith("3 reminder(s) queued"), real.summary
    assert {n.agent_run_id for n in db.session.scalars(select(DunningNotice))} == {real.id}
    assert [r["level"] for r in db.session.get(AgentRun, real.id).details["queued"]] == [1, 1, 1]
    work_off(mail_sink, "delivery")
    assert len(mail_sink.messages()) == 3


def test_cli_preview_json_and_run(world, runner, mail_sink):
    entity, invoices = world
    result = runner.invoke(args=["dunning", "preview", "--entity", "DE01", "--as-of", day(7).isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    bolt = rows[0]
    assert set(bolt) >= {"customer", "email", "level", "invoices", "fee", "interest", "total"}
    assert (bolt["customer"], bolt["email"], bolt["level"]) == ("Bolt", "c-1@example.com", 1)
    assert bolt["invoices"] == [{"number": invoices["Bolt"].number, "due_date": DUE.isoformat(), "days_past_due": 7,
                                 "amount_due": "58.53", "level": 1, "interest": "0.10"}]
    assert (bolt["fee"], bolt["interest"], bolt["total"]) == ("0.00", "0.10", "58.63")

    result = runner.invoke(args=["dunning", "run", "--entity", "DE01", "--as-of", day(7).isoformat(), "--inline"])
    assert result.exit_code == 0, result.output
    assert "Bolt <c-1@example.com>: level 1" in result.output and ": sent" in result.output
    assert len(mail_sink.messages()) == 3
    result = runner.invoke(args=["dunning", "run", "--entity", "DE01", "--as-of", day(7).isoformat()])
    assert "0 reminder(s) queued" in result.output
    ran = json.loads(runner.invoke(args=["dunning", "run", "--entity", "DE01", "--as-of", day(21).isoformat(),
                                         "--inline", "--json"]).output)
    assert [(r["customer"], r["level"], r["fee"], r["status"]) for r in ran["queued"]][0] == ("Bolt", 2, "5.00", "sent")
    assert len(mail_sink.messages()) == 6

    customer_id = invoices["Bolt"].customer_id
    result = runner.invoke(args=["dunning", "hold", str(customer_id), "--entity", "DE01", "--reason", "disputed",
                                 "--note", "service outage"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Customer, customer_id).dunning_hold == "disputed"
    result = runner.invoke(args=["dunning", "dispute", invoices["Cargo"].number, "--entity", "DE01"])
    assert result.exit_code == 0 and db.session.get(Invoice, invoices["Cargo"].id).disputed
    result = runner.invoke(args=["dunning", "hold", "999999", "--entity", "DE01", "--reason", "paused"])
    assert result.exit_code == 1 and "no customer #999999" in result.output
