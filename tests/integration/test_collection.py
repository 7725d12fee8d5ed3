"""Payment collection: manual payments, SEPA batches and pain.008, returns retried on day 3, 7, 14."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import select

from app.audit import Actor
from app.billing.runs import execute_run, start_billing_run
from app.extensions import db
from app.models import AuditEntry, Collection, Customer, Event, Invoice, SepaBatch, SepaBatchItem
from app.payments.collection import present_due_retries, record_outcome, start_collection
from app.payments.ledger import PaymentError, record_payment
from app.payments.sepa import BatchError, close_batch
from app.reports.dashboard import dashboard_figures
from tests.factories import CUSTOMER_ADDRESS, make_contract, make_entity

ADMIN = Actor.system("test")
IBAN = "DE89370400440532013000"


def sepa_entity():
    entity = make_entity(finance_email="finance@example.com")
    entity.sepa_creditor_id, entity.iban, entity.bic = "DE98ZZZ09999999999", "DE02120300000000202051", "BYLADEM1001"
    return entity


def bill(entity, *contracts_args):
    for args in contracts_args:
        make_contract(entity, **args)
    db.session.commit()
    result = start_billing_run(entity, date(2026, 11, 26), "cli", ADMIN, enqueue=False)
    execute_run(result.run.id, inline=True)
    return list(db.session.scalars(select(Invoice).order_by(Invoice.id)))


def make_sepa_customer(entity, name="Bolt"):
    customer = Customer(legal_entity_id=entity.id, name=name, email="ap@bolt.example", payment_method="sepa_debit",
                        **CUSTOMER_ADDRESS,
                        iban=IBAN, mandate_reference="MANDATE-1", mandate_date=date(2026, 1, 15))
    db.session.add(customer)
    db.session.flush()
    return customer


def test_manual_invoice_waits_and_payments_close_it(db_session):
    entity = make_entity()
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1)})
    assert start_collection(invoice.id).status == "waiting"
    assert start_collection(invoice.id).message == "already started"  # the event seen twice
    assert dashboard_figures(entity).open_by_currency == {"EUR": Decimal("58.53")}

    record_payment(invoice.id, Decimal("20.00"), date(2026, 12, 1), "bank 123", ADMIN)
    db.session.commit()
    assert (invoice.amount_due, invoice.status) == (Decimal("38.53"), "issued")
    with pytest.raises(PaymentError, match="is more than the 38.53 EUR still due"):
        record_payment(invoice.id, Decimal("40.00"), date(2026, 12, 2), "", ADMIN)
    with pytest.raises(PaymentError, match="more decimals than EUR allows"):
        record_payment(invoice.id, Decimal("1.005"), date(2026, 12, 2), "", ADMIN)
    record_payment(invoice.id, Decimal("38.53"), date(2026, 12, 3), "bank 124", ADMIN)
    db.session.commit()
    assert (invoice.amount_due, invoice.status) == (Decimal("0"), "paid")
    assert dashboard_figures(entity).open_by_currency == {}
    assert db.session.scalar(select(Collection)).status == "collected"


def test_sepa_customer_lands_in_a_batch_whose_pain008_validates_with_the_control_sum(db_session):
    entity = sepa_entity()
    bolt = make_sepa_customer(entity)
    make_sepa_customer(entity, "Starship Technologies")
    invoices = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"},
                    {"reference": "C-2", "start": date(2026, 10, 1), "customer": "Starship Technologies"})
    for invoice in invoices:
        assert start_collection(invoice.id).status == "in_batch"
    batch = db.session.scalar(select(SepaBatch))
    assert batch.status == "open" and len(batch.items) == 3
    close_batch(batch, ADMIN, date(2026, 11, 27))
    db.session.commit()
    # not closing day + 2 (Sunday 29 Nov) but the date the invoices pre-notified: due 10 Dec, a TARGET2 day
    assert batch.status == "closed" and batch.collection_date == date(2026, 12, 10)
    assert batch.control_sum == sum(i.total_amount for i in invoices) == Decimal("175.59")
    tree = etree.fromstring(batch.xml)
    ns = {"p": tree.nsmap[None]}
    assert tree.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "175.59"
    assert tree.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=ns) == "3"
    assert sorted(tree.xpath("//p:EndToEndId/text()", namespaces=ns)) == sorted(f"{i.number}-1" for i in invoices)
    assert tree.xpath("//p:MndtId/text()", namespaces=ns)[0] in ("MANDATE-1", bolt.mandate_reference)
    with pytest.raises(BatchError, match="already closed"):
        close_batch(batch, ADMIN, date(2026, 11, 27))


def test_a_batch_needs_the_creditor_data(db_session):
    entity = make_entity()
    make_sepa_customer(entity)
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    start_collection(invoice.id)
    with pytest.raises(BatchError, match="has no SEPA creditor id, IBAN, BIC"):
        close_batch(db.session.scalar(select(SepaBatch)), ADMIN, date(2026, 11, 27))


def test_a_sepa_customer_with_a_bad_iban_fails_with_the_reason(db_session):
    entity = sepa_entity()
    customer = make_sepa_customer(entity)
    customer.iban = "DE89370400440532013001"
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    result = start_collection(invoice.id)
    assert result.status == "failed" and "invalid checksum" in result.message
    assert db.session.scalar(select(SepaBatchItem)) is None


def present_and_return(entity, day, reason="AM04 insufficient funds"):
    batch = db.session.scalar(select(SepaBatch).where(SepaBatch.status == "open"))
    close_batch(batch, ADMIN, day)
    item = batch.items[-1]
    record_outcome(item, "returned", day, ADMIN, reason)
    db.session.commit()
    return item


def test_a_returned_debit_is_retried_on_day_3_7_14_then_flagged(db_session, mail_sink):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    start_collection(invoice.id)
    failed_on = date(2026, 12, 1)
    first = present_and_return(entity, failed_on)
    collection = db.session.scalar(select(Collection))
    assert (collection.status, collection.next_retry_on) == ("retry_scheduled", failed_on + timedelta(days=3))
    event = db.session.scalar(select(Event).where(Event.type == "payment.retry_scheduled"))
    assert event.payload["retry_on"] == "2026-12-04" and event.payload["attempt"] == 2

    for attempt, day in ((2, 3), (3, 7), (4, 14)):
        assert present_due_retries(failed_on + timedelta(days=day - 1)) == 0  # the day before: nothing
        assert present_due_retries(failed_on + timedelta(days=day)) == 1
        item = db.session.scalar(select(SepaBatchItem).where(SepaBatchItem.batch.has(status="open")))
        assert item.attempt == attempt and item.end_to_end_id == f"{invoice.number}-{attempt}"
        present_and_return(entity, failed_on + timedelta(days=day))
    db.session.refresh(collection)
    assert collection.status == "flagged" and collection.attempts == 4
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "collection.flagged"))
    notice, = [m for m in mail_sink.messages() if m["To"] == "finance@example.com"]
    assert invoice.number in notice["Subject"]
    assert first.status == "returned" and invoice.status == "issued"


def test_a_collected_debit_pays_the_invoice(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    start_collection(invoice.id)
    batch = db.session.scalar(select(SepaBatch))
    with pytest.raises(ValueError, match="close its batch first"):
        record_outcome(batch.items[0], "collected", date(2026, 12, 1), ADMIN)
    close_batch(batch, ADMIN, date(2026, 11, 27))
    record_outcome(batch.items[0], "collected", date(2026, 12, 1), ADMIN)
    db.session.commit()
    assert invoice.status == "paid" and invoice.amount_due == 0
    assert db.session.scalar(select(Collection)).status == "collected"
