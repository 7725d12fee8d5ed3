"""Payments that can be corrected: a reversal is a counter-entry (never a change or a delete), with a reason,
audited and announced; a payment dated after today is refused."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit import Actor
from app.extensions import db
from app.models import AuditEntry, Collection, CustomerCredit, Event, Invoice, Payment, SepaBatch
from app.payments.collection import start_collection
from app.payments.ledger import PaymentError, record_payment, reverse_payment
from app.reports.aging import aging_report
from app.reports.dashboard import dashboard_figures
from tests.factories import make_entity
from tests.integration.test_collection import make_sepa_customer, sepa_entity
from tests.integration.test_credit_notes import billed, credit, invoices, run

ADMIN = Actor.system("test")


def events(type_):
    return [e.payload for e in db.session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))]


def state(invoice):
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    return invoice.status, invoice.amount_due


def test_a_reversal_is_a_counter_entry_and_the_invoice_is_due_again(db_session):
    entity = make_entity()
    invoice = billed(entity)
    start_collection(invoice.id)
    payment = record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    assert state(invoice) == ("paid", Decimal("0"))
    assert db.session.scalar(select(Collection)).status == "collected"
    received, = events("payment.received")
    assert received == {"invoice_id": invoice.id, "payment_id": payment.id, "amount": "58.53", "currency": "EUR",
                        "source": "manual", "amount_due": "0.00", "status": "paid"}

    reversal = reverse_payment(payment.id, "typed on the wrong invoice", ADMIN)
    db.session.commit()
    assert state(invoice) == ("issued", Decimal("58.53"))
    original = db.session.get(Payment, payment.id)
    assert (original.amount, original.reverses_payment_id, original.reason) == (Decimal("58.53"), None, None)
    assert (reversal.amount, reversal.reverses_payment_id, reversal.reason, reversal.received_on) == (
        Decimal("-58.53"), payment.id, "typed on the wrong invoice", entity.today())
    assert db.session.scalar(select(func.sum(Payment.amount)).where(Payment.invoice_id == invoice.id)) == 0
    collection = db.session.scalar(select(Collection))
    assert collection.status == "waiting" and "reversed" in collection.last_error
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "payment.reversed"))
    assert (audit.subject_id, audit.details["amount"], audit.details["reason"], audit.details["payment_id"]) == (
        invoice.id, "58.53", "typed on the wrong invoice", payment.id)
    assert events("payment.reversed") == [{
        "invoice_id": invoice.id, "payment_id": payment.id, "reversal_id": reversal.id, "amount": "58.53",
        "currency": "EUR", "source": "manual", "amount_due": "58.53", "status": "issued"}]
    assert dashboard_figures(entity).open_by_currency == {"EUR": Decimal("58.53")}
    report = aging_report(entity, date(2026, 12, 3))
    assert [r.total for s in report.sections for r in s.rows] == [Decimal("58.53")]

    # paid again, correctly this time
    record_payment(invoice.id, Decimal("58.53"), date(2026, 12, 1), "bank 2", ADMIN)
    db.session.commit()
    assert state(invoice) == ("paid", Decimal("0"))


def test_a_payment_is_reversed_once_and_a_reversal_is_not_reversed(db_session):
    entity = make_entity()
    invoice = billed(entity)
    payment = record_payment(invoice.id, Decimal("20.00"), date(2026, 11, 28), "bank 1", ADMIN)
    reversal = reverse_payment(payment.id, "cheque bounced", ADMIN)
    db.session.commit()
    assert state(invoice) == ("issued", Decimal("58.53"))
    with pytest.raises(PaymentError, match=rf"payment #{payment.id} was reversed already \(payment #{reversal.id}"):
        reverse_payment(payment.id, "again", ADMIN)
    with pytest.raises(PaymentError, match="is itself the reversal"):
        reverse_payment(reversal.id, "undo", ADMIN)
    for blank in ("", "   "):
        with pytest.raises(PaymentError, match="say why the payment is reversed"):
            reverse_payment(payment.id, blank, ADMIN)
    with pytest.raises(PaymentError, match="no payment #999999"):
        reverse_payment(999999, "x", ADMIN)
    db.session.rollback()
    assert state(invoice) == ("issued", Decimal("58.53"))
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 2


def test_a_payment_dated_after_today_in_the_entitys_zone_is_refused(db_session):
    entity = make_entity(timezone="Pacific/Kiritimati")  # UTC+14: its today may be UTC's tomorrow
    invoice = billed(entity)
    today = entity.today()
    with pytest.raises(PaymentError, match=rf"{today + timedelta(days=1)} is in the future \(today is {today} in "
                                           r"Pacific/Kiritimati\)"):
        record_payment(invoice.id, Decimal("10.00"), today + timedelta(days=1), "", ADMIN)
    db.session.rollback()
    assert state(invoice) == ("issued", Decimal("58.53"))
    assert events("payment.received") == []
    record_payment(invoice.id, Decimal("10.00"), today, "", ADMIN)  # today itself is fine
    db.session.commit()
    assert state(invoice) == ("issued", Decimal("48.53"))


def test_reversing_a_customer_credit_payment_gives_the_credit_back(db_session):
    entity = make_entity()
    invoice = billed(entity)
    record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    credit(invoice, amount=Decimal("20.00"))
    run(entity, date(2026, 12, 3))  # December's invoice takes the credit
    december = invoices()[1]
    applied = db.session.scalar(select(Payment).where(Payment.invoice_id == december.id))
    assert applied.source == "customer_credit"

    reversal = reverse_payment(applied.id, "credit applied to the wrong contract", ADMIN)
    db.session.commit()
    assert (reversal.source, reversal.customer_credit_id) == ("customer_credit", applied.customer_credit_id)
    assert state(december) == ("issued", Decimal("58.53"))
    customer_credit = db.session.scalar(select(CustomerCredit))
    assert (customer_credit.applied_amount, customer_credit.available) == (Decimal("0"), Decimal("20.00"))
    run(entity, date(2027, 1, 3))  # January's invoice takes it again
    assert invoices()[2].amount_due == Decimal("38.53")


def test_a_payment_on_an_invoice_credited_since_cannot_be_reversed(db_session):
    entity = make_entity()
    invoice = billed(entity)
    payment = record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    note = credit(invoice, amount=Decimal("20.00"))  # paid: the 20.00 became the customer's credit
    with pytest.raises(PaymentError, match=rf"credited by {note.number} after it was paid: only 38,53\xa0€ is "
                                           r"still owed on it, and reversing 58,53\xa0€ would make 58,53\xa0€ due"):
        reverse_payment(payment.id, "bounced", ADMIN)
    db.session.rollback()
    credit(invoice)  # the rest: fully credited
    with pytest.raises(PaymentError, match="is fully credited: nothing can be due on it again"):
        reverse_payment(payment.id, "bounced", ADMIN)
    db.session.rollback()
    assert state(invoice) == ("credited", Decimal("0"))
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


def test_a_partial_payment_on_a_partly_credited_invoice_can_be_reversed_within_what_is_owed(db_session):
    entity = make_entity()
    invoice = billed(entity)
    payment = record_payment(invoice.id, Decimal("30.00"), date(2026, 11, 28), "bank 1", ADMIN)
    db.session.commit()
    credit(invoice, amount=Decimal("20.00"))
    assert state(invoice) == ("issued", Decimal("8.53"))
    reverse_payment(payment.id, "bounced", ADMIN)
    db.session.commit()
    assert state(invoice) == ("issued", Decimal("38.53"))


def test_a_reversed_sepa_payment_waits_for_a_person_and_a_pending_debit_goes_ahead(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoice = billed(entity, customer="Bolt")
    assert start_collection(invoice.id).status == "in_batch"
    # paid by transfer while its debit waits in the open batch
    payment = record_payment(invoice.id, Decimal("58.53"), date(2026, 11, 28), "transfer", ADMIN)
    db.session.commit()
    assert db.session.scalar(select(Collection)).status == "collected"
    reverse_payment(payment.id, "the transfer was for another invoice", ADMIN)
    db.session.commit()
    assert db.session.scalar(select(Collection)).status == "in_batch"
    batch = db.session.scalar(select(SepaBatch))
    assert [(i.status, i.amount) for i in batch.items] == [("pending", Decimal("58.53"))]


def test_the_database_refuses_a_positive_reversal_and_a_reversal_without_reason(db_session):
    entity = make_entity()
    invoice = billed(entity)
    payment = record_payment(invoice.id, Decimal("10.00"), date(2026, 11, 28), "", ADMIN)
    db.session.commit()
    bad = [dict(amount=Decimal("10.00"), reverses_payment_id=payment.id, reason="x"),
           dict(amount=Decimal("-10.00"), reverses_payment_id=payment.id, reason=None),
           dict(amount=Decimal("-10.00"), reverses_payment_id=payment.id, reason="  "),
           dict(amount=Decimal("-10.00"), reverses_payment_id=None, reason="x")]
    for values in bad:
        db.session.add(Payment(invoice_id=invoice.id, received_on=date(2026, 11, 28), source="manual", **values))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
    for _ in range(2):  # reversed at most once
        db.session.add(Payment(invoice_id=invoice.id, received_on=date(2026, 11, 28), source="manual",
                               amount=Decimal("-10.00"), reverses_payment_id=payment.id, reason="x"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
