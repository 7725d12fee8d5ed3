"""Closing a SEPA batch: a pain.008.001.08 file valid by its XSD, whose MsgId is the stored id and the file name;
only what is still due is debited, exactly its amount due, on a TARGET2 day never before the pre-notified date;
FRST then RCUR per mandate; the CLI."""
import json
import threading
from datetime import date
from decimal import Decimal
from importlib import resources

import pytest
from lxml import etree
from sqlalchemy import select

from app.audit import Actor
from app.transactions import unit_of_work
from app.extensions import db
from app.models import SepaBatch
from app.payments.collection import record_outcome, start_collection
from app.payments.ledger import record_payment
from app.payments.sepa import BatchError, close_batch, file_name
from app.records.credit_notes import CreditRequest, credit_invoice
from tests.integration.test_billing_concurrency import in_thread
from tests.integration.test_collection import bill, make_sepa_customer, sepa_entity

ACTOR = Actor.system("test")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}
SCHEMA = etree.XMLSchema(etree.parse(str(resources.files("sepaxml") / "schemas" / "pain.008.001.08.xsd")))


def open_batch():
    return db.session.scalar(select(SepaBatch).where(SepaBatch.status == "open"))


def collect_all(invoices):
    for invoice in invoices:
        assert start_collection(invoice.id).status == "in_batch"


def debits(xml: bytes) -> dict[str, tuple[str, str, str]]:
    """End-to-end id → (amount, sequence type, requested collection date), as the file says."""
    tree = etree.fromstring(xml)
    out = {}
    for block in tree.iterfind(".//p:PmtInf", NS):
        seq, when = block.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS), block.findtext("p:ReqdColltnDt", namespaces=NS)
        for tx in block.iterfind("p:DrctDbtTxInf", NS):
            out[tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS)] = (tx.findtext("p:InstdAmt", namespaces=NS), seq,
                                                                       when)
    return out


def test_the_file_is_valid_pain008_001_08_and_its_msgid_is_stored_and_names_it(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    collect_all(bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"}))
    batch = close_batch(open_batch(), ACTOR, date(2026, 12, 4))
    db.session.commit()
    tree = etree.fromstring(batch.xml)
    SCHEMA.assertValid(tree)
    assert tree.nsmap[None] == NS["p"]
    msg_id = tree.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", namespaces=NS)
    assert msg_id == batch.message_id == "ARBDE0100000120261204" and file_name(batch) == f"{msg_id}.xml"


def test_no_longer_due_invoices_drop_out_with_a_note_and_a_partly_paid_one_is_debited_its_amount_due(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoices = bill(entity, *({"reference": f"C-{n}", "start": date(2026, 11, 1), "customer": "Bolt"}
                              for n in range(1, 5)))
    voided, paid, credited, partly = invoices
    collect_all(invoices)
    voided.status = "void"  # as an invoice voided before credit notes existed
    record_payment(paid.id, Decimal("58.53"), date(2026, 12, 1), "bank 1", ACTOR)
    credit_invoice(credited, CreditRequest(reason="Service not delivered"), ACTOR, today=date(2026, 12, 1))
    record_payment(partly.id, Decimal("50.00"), date(2026, 12, 1), "bank 2", ACTOR)
    db.session.commit()

    batch = close_batch(open_batch(), ACTOR, date(2026, 12, 4))
    db.session.commit()
    items = {i.invoice_id: i for i in batch.items}
    for invoice, why in ((voided, "is void"), (paid, "is paid"), (credited, "credited")):
        assert items[invoice.id].status == "withdrawn" and why in items[invoice.id].note, items[invoice.id].note
    assert items[partly.id].status == "pending" and items[partly.id].amount == Decimal("8.53")
    assert "58.53" in items[partly.id].note and "8.53" in items[partly.id].note
    assert debits(batch.xml) == {items[partly.id].end_to_end_id: ("8.53", "FRST", "2026-12-10")}
    assert (batch.control_sum, batch.item_count) == (Decimal("8.53"), 1)
    SCHEMA.assertValid(etree.fromstring(batch.xml))


def test_a_customer_who_no_longer_pays_by_direct_debit_drops_out(db_session):
    entity = sepa_entity()
    bolt = make_sepa_customer(entity)
    starship = make_sepa_customer(entity, "Starship Technologies")
    starship.mandate_reference = "MANDATE-2"
    invoices = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"},
                    {"reference": "C-2", "start": date(2026, 11, 1), "customer": "Starship Technologies"})
    collect_all(invoices)
    bolt.payment_method, bolt.iban, bolt.mandate_reference, bolt.mandate_date = "manual", None, None, None
    batch = close_batch(open_batch(), ACTOR, date(2026, 12, 4))
    withdrawn, sent = batch.items
    assert withdrawn.status == "withdrawn" and "Bolt no longer pays by SEPA direct debit" in withdrawn.note
    assert list(debits(batch.xml)) == [sent.end_to_end_id]


def test_a_batch_with_nothing_left_due_is_not_closed(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    collect_all([invoice])
    record_payment(invoice.id, Decimal("58.53"), date(2026, 12, 1), "bank 1", ACTOR)
    with pytest.raises(BatchError, match=r"has no debits to send \(1 withdrawn: DE01-2026-000001-1\)"):
        close_batch(open_batch(), ACTOR, date(2026, 12, 4))


@pytest.mark.parametrize("closing_day, expected", [
    (date(2026, 11, 27), date(2026, 12, 10)),  # + 2 = Sunday 29 Nov, but the invoice said "on or after 10 Dec"
    (date(2026, 12, 18), date(2026, 12, 21)),  # + 2 = Sunday 20 Dec: Monday
    (date(2026, 12, 23), date(2026, 12, 28)),  # + 2 = Christmas Day: Sat, Sun, so Monday 28
    (date(2027, 3, 24), date(2027, 3, 30)),  # + 2 = Good Friday; Easter Monday is closed too
])
def test_collection_date_is_a_target2_day_never_before_the_pre_notified_date(db_session, closing_day, expected):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoice, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    assert invoice.due_date == date(2026, 12, 10)
    collect_all([invoice])
    batch = close_batch(open_batch(), ACTOR, closing_day)
    assert batch.collection_date == batch.items[0].collection_date == expected >= invoice.due_date
    assert [when for _, _, when in debits(batch.xml).values()] == [expected.isoformat()]


def test_first_collection_under_a_mandate_is_frst_then_rcur_and_a_changed_iban_starts_again(db_session):
    entity = sepa_entity()
    bolt = make_sepa_customer(entity)
    first, = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"})
    collect_all([first])
    batch = close_batch(open_batch(), ACTOR, date(2026, 11, 27))
    assert batch.items[0].sequence_type == "FRST"
    record_outcome(batch.items[0], "collected", date(2026, 12, 1), ACTOR)  # a payment is never dated after today
    db.session.commit()

    starship = make_sepa_customer(entity, "Starship Technologies")
    starship.mandate_reference = "MANDATE-2"
    second = bill(entity, {"reference": "C-2", "start": date(2026, 11, 1), "customer": "Starship Technologies"})[-1]
    third, = [i for i in bill(entity, {"reference": "C-3", "start": date(2026, 11, 1), "customer": "Bolt"})
              if i.id not in (first.id, second.id)]
    collect_all([second, third])
    batch = close_batch(open_batch(), ACTOR, date(2026, 12, 14))
    db.session.commit()
    sent = debits(batch.xml)
    by_invoice = {i.invoice_id: i for i in batch.items}
    assert sent[by_invoice[third.id].end_to_end_id][1] == "RCUR"  # Bolt's mandate was collected before
    assert sent[by_invoice[second.id].end_to_end_id][1] == "FRST"  # Starship's first
    assert len(etree.fromstring(batch.xml).findall(".//p:PmtInf", NS)) == 2  # one block per sequence type
    SCHEMA.assertValid(etree.fromstring(batch.xml))

    bolt.iban = "DE02100100100006820101"  # a new account under the same mandate: not collected from before
    fourth, = [i for i in bill(entity, {"reference": "C-4", "start": date(2026, 11, 1), "customer": "Bolt"})
               if i.id not in (first.id, second.id, third.id)]
    collect_all([fourth])
    batch = close_batch(open_batch(), ACTOR, date(2026, 12, 14))
    assert [seq for _, seq, _ in debits(batch.xml).values()] == ["FRST"]


def test_cli_close_prints_the_batch_and_file_writes_it(app, runner, tmp_path):
    with app.app_context():
        entity = sepa_entity()
        make_sepa_customer(entity)
        collect_all(bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"}))
        db.session.commit()
    result = runner.invoke(args=["sepa", "close", "--entity", "DE01", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["batch_id", "message_id", "collection_date", "debits", "total", "file"]
    assert (data["debits"], data["total"], data["file"]) == (1, "58.53", f"{data['message_id']}.xml")
    target = tmp_path / data["file"]
    result = runner.invoke(args=["sepa", "file", str(data["batch_id"]), "-o", str(target)])
    assert result.exit_code == 0, result.output
    tree = etree.parse(str(target))
    SCHEMA.assertValid(tree)
    assert tree.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", namespaces=NS) == data["message_id"]
    assert tree.findtext(".//p:ReqdColltnDt", namespaces=NS) == data["collection_date"]
    with app.app_context():
        batch = db.session.get(SepaBatch, data["batch_id"])
        assert (batch.message_id, batch.collection_date.isoformat()) == (data["message_id"], data["collection_date"])

    result = runner.invoke(args=["sepa", "close", "--entity", "DE01"])
    assert result.exit_code == 1 and "DE01 has no open SEPA batch" in result.output
    result = runner.invoke(args=["sepa", "file", "999", "-o", str(tmp_path / "x.xml")])
    assert result.exit_code == 1 and "no SEPA batch #999" in result.output


def test_a_debit_added_while_the_batch_is_being_closed_goes_into_the_next_batch(app, db_session):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has a single writer)")
    entity = sepa_entity()
    make_sepa_customer(entity)
    first, second = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"},
                         {"reference": "C-2", "start": date(2026, 11, 1), "customer": "Bolt"})
    collect_all([first])
    db.session.commit()
    batch_id, closed, release = open_batch().id, threading.Event(), threading.Event()

    def close_and_hold():
        with unit_of_work():  # close_batch joins it: the batch stays locked until this commits
            close_batch(db.session.get(SepaBatch, batch_id), ACTOR, date(2026, 12, 4))
            closed.set()
            release.wait(10)

    closer, closer_errors = in_thread(app, close_and_hold)
    assert closed.wait(10)
    adder, adder_errors = in_thread(app, start_collection, second.id)
    adder.join(0.5)
    assert adder.is_alive()  # waits for the batch being closed
    release.set()
    closer.join(10), adder.join(10)
    assert closer_errors == adder_errors == []
    db.session.expire_all()
    closed_batch = db.session.get(SepaBatch, batch_id)
    assert [i.invoice_id for i in closed_batch.items] == [first.id]
    assert [i.invoice_id for i in open_batch().items] == [second.id]


def test_a_file_the_schema_refuses_is_not_closed_and_says_why(db_session):
    entity = sepa_entity()
    entity.bic = "NOTABIC"
    make_sepa_customer(entity)
    collect_all(bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"}))
    with pytest.raises(BatchError, match=r"pain.008.001.08 file of batch #\d+ does not validate \(line \d+: .*BICFI"):
        close_batch(open_batch(), ACTOR, date(2026, 12, 4))
