"""Cash application from bank statements: the Reconciliation Agent applies credits by creditor reference, invoice
number, or amount and payer; short payments leave the rest due, over-payments become customer credit, returned
SEPA debits re-open their invoice; what is uncertain waits in the queue for an accountant; a statement imported
twice adds nothing; a statement that is not the entity's is refused whole. Real camt.053 files, XSD-checked."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.agents.service import get_agent, update_configuration
from app.audit import Actor
from app.banking import samples
from app.billing.references import creditor_reference
from app.extensions import db
from app.models import AuditEntry, BankEntry, BankStatement, Collection, CustomerCredit, Event, Invoice, Payment
from app.payments.bank_queue import QueueError, assign, mark_not_ours
from app.payments.cash import BankImportError, import_statement
from app.payments.collection import record_outcome, start_collection
from app.payments.ledger import reverse_payment
from app.payments.sepa import close_batch, open_batch
from tests.bank_answer_files import valid
from tests.integration.test_collection import bill, make_sepa_customer, sepa_entity

ACTOR = Actor.system("test")
ACCOUNT = "DE02120300000000202051"  # sepa_entity()'s IBAN


def statement(entries: list[dict], version: str = "08", **kwargs) -> bytes:
    xml = samples.camt053(entries, version=version, account_iban=kwargs.pop("account_iban", ACCOUNT), **kwargs)
    assert valid(xml, f"camt.053.001.{version}")
    return xml


def credit(amount: str, ref: str, **fields) -> dict:
    return {"amount": amount, "direction": "credit", "booking_date": "2026-12-03", "bank_reference": ref, **fields}


def three_invoices(entity):
    return bill(entity, *({"reference": f"C-{n}", "start": date(2026, 11, 1), "customer": name}
                          for n, name in ((1, "Acme Tools"), (2, "Acme Tools"), (3, "Bolt Logistics"))))


def entry(ref: str) -> BankEntry:
    return db.session.scalar(select(BankEntry).where(BankEntry.bank_reference == ref))


def test_credits_are_applied_by_reference_number_and_payer_and_the_rest_waits(db_session):
    entity = sepa_entity()
    a1, a2, b1 = three_invoices(entity)
    db.session.commit()
    xml = statement([
        credit("58.53", "R1", creditor_reference=creditor_reference(a1.number), counterparty_name="Someone Else"),
        credit("30.00", "R2", remittance=f"Rechnung {a2.number.replace('-', ' ')} Teilzahlung"),
        credit("58.53", "R3", counterparty_name="BOLT LOGISTICS GMBH", remittance="Danke"),
        credit("12.34", "R4", counterparty_name="Unknown Ltd", remittance="what is this"),
        {"amount": "4.90", "direction": "debit", "booking_date": "2026-12-03", "bank_reference": "R5",
         "remittance": "Kontofuehrung"},
    ])
    result = import_statement(entity, xml, "day.xml", ACTOR)
    db.session.commit()

    assert (result.entries, result.matched, result.partially_matched, result.unmatched, result.outgoing) == (5, 3, 0, 1, 1)
    assert result.amount_applied == {"EUR": Decimal("147.06")}
    for invoice in (a1, a2, b1):
        db.session.refresh(invoice)
    assert (a1.status, a1.amount_due) == ("paid", 0)
    assert (a2.status, a2.amount_due) == ("issued", Decimal("28.53"))  # a short payment: the rest stays due
    assert (b1.status, b1.amount_due) == ("paid", 0)
    assert entry("R4").status == "unmatched" and "not one known customer" in entry("R4").match_note
    assert entry("R5").status == "outgoing"
    # every application is audited with its rule and emits payment.received
    rules = sorted(e.details["rule"] for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "bank_entry.applied")))
    assert rules == ["amount_and_payer", "creditor_reference", "invoice_number"]
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "payment.received")) == 3
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.source == "bank_transfer")) == 3


def test_one_transfer_for_several_invoices_and_an_over_payment_becomes_customer_credit(db_session):
    entity = sepa_entity()
    a1, a2, b1 = three_invoices(entity)
    db.session.commit()
    xml = statement([credit("120.00", "R1", remittance=f"{a1.number}, {a2.number}", counterparty_name="Acme")])
    result = import_statement(entity, xml, "day.xml", ACTOR)
    db.session.commit()
    assert result.matched == 1 and result.amount_applied == {"EUR": Decimal("120.00")}
    assert [db.session.get(Invoice, i.id).status for i in (a1, a2)] == ["paid", "paid"]
    credit_row = db.session.scalar(select(CustomerCredit))
    assert (credit_row.amount, credit_row.customer_id, credit_row.bank_entry_id) == (Decimal("2.94"), a1.customer_id,
                                                                                     entry("R1").id)
    assert entry("R1").status == "matched" and "kept as the customer's credit" in entry("R1").match_note


def test_a_reference_to_a_paid_invoice_is_never_guessed_around(db_session):
    entity = sepa_entity()
    a1, _, _ = three_invoices(entity)
    db.session.commit()
    import_statement(entity, statement([credit("58.53", "R1", creditor_reference=creditor_reference(a1.number))]),
                     "1.xml", ACTOR)
    db.session.commit()
    # the customer pays the same invoice again: not applied elsewhere, it waits with the reason
    result = import_statement(entity, statement([credit("58.53", "R2", remittance=f"Invoice {a1.number}")],
                                                statement_id="S2"), "2.xml", ACTOR)
    db.session.commit()
    assert result.unmatched == 1 and f"{a1.number} is paid already" in entry("R2").match_note


def test_the_same_statement_twice_adds_nothing_and_an_overlap_adds_only_the_new_entries(db_session):
    entity = sepa_entity()
    a1, a2, _ = three_invoices(entity)
    db.session.commit()
    first = [credit("58.53", "R1", remittance=a1.number)]
    import_statement(entity, statement(first), "1.xml", ACTOR)
    db.session.commit()
    again = import_statement(entity, statement(first), "1-again.xml", ACTOR)
    db.session.commit()
    assert (again.entries, again.duplicate_entries, again.matched) == (0, 1, 0)
    overlap = import_statement(entity, statement(first + [credit("58.53", "R2", remittance=a2.number)],
                                                 statement_id="S-2"), "2.xml", ACTOR)
    db.session.commit()
    assert (overlap.entries, overlap.duplicate_entries, overlap.matched) == (1, 1, 1)
    assert db.session.scalar(select(func.count()).select_from(BankEntry)) == 2
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 2


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_statement_of_another_account_or_currency_or_a_broken_file_changes_nothing(db_session, version):
    entity = sepa_entity()
    three_invoices(entity)
    db.session.commit()
    cases = [
        (statement([credit("1.00", "R1")], version, account_iban="FR7630006000011234567890189"), "not DE01's account"),
        (statement([credit("1.00", "R1")], version, currency="USD"), "a currency DE01 does not bill in"),
        (statement([credit("1.00", "R1")], version)[:-40], "XML"),
        (b"%PDF-1.7 not a statement", "column"),
    ]
    for data, message in cases:
        with pytest.raises(BankImportError, match=message):
            import_statement(entity, data, "bad", ACTOR)
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(BankStatement)) == 0


def test_the_queue_assign_part_and_mark_not_ours(db_session):
    entity = sepa_entity()
    a1, a2, _ = three_invoices(entity)
    db.session.commit()
    import_statement(entity, statement([credit("100.00", "R1", counterparty_name="Nobody Known"),
                                        credit("7.00", "R2", remittance="Zinsen")]), "1.xml", ACTOR)
    db.session.commit()
    waiting = entry("R1")
    assign(waiting.id, a1.number, None, ACTOR)  # as much as both allow: 58.53
    db.session.commit()
    assert (waiting.status, waiting.applied_amount) == ("partially_matched", Decimal("58.53"))
    with pytest.raises(QueueError, match="50,00\xa0€ is more than the 41,47\xa0€ of this transfer"):
        assign(waiting.id, a2.number, Decimal("50.00"), ACTOR)
    db.session.rollback()
    payment = assign(waiting.id, a2.number, Decimal("41.47"), ACTOR)
    db.session.commit()
    assert waiting.status == "matched" and db.session.get(Invoice, a2.id).amount_due == Decimal("17.06")
    with pytest.raises(QueueError, match="say why"):
        mark_not_ours(entry("R2").id, " ", ACTOR)
    mark_not_ours(entry("R2").id, "interest from the bank", ACTOR)
    db.session.commit()
    assert entry("R2").status == "not_ours"
    # a wrongly assigned payment is reversed: its money waits in the queue again
    reverse_payment(payment.id, "assigned to the wrong invoice", ACTOR)
    db.session.commit()
    db.session.refresh(waiting)
    assert (waiting.status, waiting.unapplied) == ("partially_matched", Decimal("41.47"))
    assert db.session.get(Invoice, a2.id).amount_due == Decimal("58.53")


def test_sepa_debits_collected_and_returned_through_the_statement(db_session):
    entity = sepa_entity()
    make_sepa_customer(entity)
    invoices = bill(entity, {"reference": "C-1", "start": date(2026, 11, 1), "customer": "Bolt"},
                    {"reference": "C-2", "start": date(2026, 11, 1), "customer": "Bolt"})
    for invoice in invoices:
        start_collection(invoice.id)
    batch = close_batch(open_batch(entity.id), ACTOR, date(2026, 12, 1))
    db.session.commit()
    one, two = batch.items
    collected = statement([{"amount": "117.06", "direction": "credit", "booking_date": "2026-12-04",
                            "bank_reference": "COLL-1", "transactions": [
                                {"amount": "58.53", "end_to_end_id": one.end_to_end_id},
                                {"amount": "58.53", "end_to_end_id": two.end_to_end_id}]}])
    result = import_statement(entity, collected, "coll.xml", ACTOR)
    db.session.commit()
    assert result.matched == 2 and {i.status for i in batch.items} == {"collected"}
    assert all(db.session.get(Invoice, i.id).status == "paid" for i in invoices)
    # weeks later the debtor's bank returns one of them (MD06: refund claimed): due again, retried
    returned = statement([{"amount": "58.53", "direction": "debit", "booking_date": "2026-12-05",
                           "bank_reference": "RET-1", "end_to_end_id": one.end_to_end_id, "return_reason": "MD06"}],
                         statement_id="S-RET")
    result = import_statement(entity, returned, "ret.xml", ACTOR)
    db.session.commit()
    assert result.returns == 1
    invoice = db.session.get(Invoice, one.invoice_id)
    assert (invoice.status, invoice.amount_due) == ("issued", Decimal("58.53"))
    assert db.session.get(Collection, one.collection_id).status == "retry_scheduled"
    assert one.status == "returned" and one.return_reason == "MD06"
    sepa_payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)
                                       .order_by(Payment.id)).all()
    assert [p.amount for p in sepa_payments] == [Decimal("58.53"), Decimal("-58.53")]  # a counter-entry


def test_cli_import_json_unmatched_and_assign(app, runner, db_session, tmp_path):
    entity = sepa_entity()
    a1, a2, _ = three_invoices(entity)
    db.session.commit()
    path = tmp_path / "camt.xml"
    path.write_bytes(statement([credit("58.53", "R1", creditor_reference=creditor_reference(a1.number)),
                                credit("20.00", "R2", counterparty_name="Nobody")]))
    out = runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {k: data[k] for k in ("entries", "matched", "partially_matched", "unmatched", "duplicate_entries",
                                 "amount_applied")} == {"entries": 2, "matched": 1, "partially_matched": 0,
                                                        "unmatched": 1, "duplicate_entries": 0,
                                                        "amount_applied": {"EUR": "58.53"}}
    again = json.loads(runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--json"]).output)
    assert (again["entries"], again["duplicate_entries"]) == (0, 2)
    queue = json.loads(runner.invoke(args=["bank", "unmatched", "--entity", "DE01", "--json"]).output)
    assert [(q["amount"], q["payer"]) for q in queue] == [("20.00", "Nobody")]
    out = runner.invoke(args=["bank", "assign", str(queue[0]["entry_id"]), a2.number, "--amount", "20.00"])
    assert out.exit_code == 0, out.output
    assert json.loads(runner.invoke(args=["bank", "unmatched", "--entity", "DE01", "--json"]).output) == []
    bad = runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--format", "mt940"])
    assert bad.exit_code == 1 and "nothing was imported" in bad.output


def test_the_agent_shows_under_definitions_with_its_configuration_and_audit(app, client_as, db_session):
    entity = sepa_entity()
    a1, _, _ = three_invoices(entity)
    db.session.commit()
    import_statement(entity, statement([credit("58.53", "R1", creditor_reference=creditor_reference(a1.number))]),
                     "day.xml", ACTOR)
    db.session.commit()
    viewer = client_as("viewer")
    assert "Reconciliation Agent" in viewer.get("/agents").get_data(as_text=True)
    configuration = viewer.get("/agents/reconciliation/configuration").get_data(as_text=True)
    assert "Match by amount and payer" in configuration and "Over-payments become customer credit" in configuration
    audit = viewer.get("/agents/reconciliation/audit").get_data(as_text=True)
    assert f"58,53\xa0€ applied to {a1.number} (creditor reference of {a1.number})" in audit
    # an admin turns matching by payer off: a transfer with no reference then waits
    update_configuration(get_agent("reconciliation"), {"match_by_payer": False, "overpayment_to_credit": True}, ACTOR)
    _, a2, _ = db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
    result = import_statement(entity, statement([credit("58.53", "R2", counterparty_name="Acme Tools")],
                                                statement_id="S2"), "2.xml", ACTOR)
    db.session.commit()
    assert result.unmatched == 1 and "no invoice reference in the transfer" in entry("R2").match_note


# An MT940 day statement as a German savings bank sends it (CRLF, :86: with ?-subfields, SEPA keywords).
MT940_DAY = (
    ":20:STARTUMSE\r\n"
    ":25:12030000/0000202051\r\n"
    ":28C:00001/001\r\n"
    ":60F:C261202EUR1000,00\r\n"
    ":61:2612031203C58,53NTRFNONREF//9812031234567\r\n"
    ":86:166?00SEPA-GUTSCHRIFT?109310?20EREF+NOTPROVIDED?21SVWZ+RF16 DE01 2026 0000 01?22 Danke?30BYLADEM1001\r\n"
    "?31DE89370400440532013000?32ACME TOOLS GMBH\r\n"
    ":61:2612031203C30,00NTRFNONREF//9812031234568\r\n"
    ":86:166?00SEPA-GUTSCHRIFT?109310?20SVWZ+Rechnung DE01-2026-00?210002 Teilbetrag?30COBADEFFXXX\r\n"
    "?31DE44500105175407324931?32Acme Tools\r\n"
    ":61:2612031203D4,90NCHGNONREF//9812031234569\r\n"
    ":86:805?00ENTGELT?20Kontofuehrung 11/2026\r\n"
    ":62F:C261203EUR1083,63\r\n"
    "-\r\n"
)


def test_an_mt940_day_statement_through_the_cli(app, runner, db_session, tmp_path):
    entity = sepa_entity()
    a1, a2, _ = three_invoices(entity)
    db.session.commit()
    assert (a1.number, a2.number) == ("DE01-2026-000001", "DE01-2026-000002")
    path = tmp_path / "day.sta"
    path.write_bytes(MT940_DAY.encode("latin-1"))
    out = runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--format", "mt940", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["entries"], data["matched"], data["unmatched"], data["outgoing"]) == (3, 2, 0, 1)
    assert data["amount_applied"] == {"EUR": "88.53"}
    listed = {i["number"]: i for i in json.loads(runner.invoke(
        args=["invoices", "list", "--entity", "DE01", "--json"]).output)}
    assert listed[a1.number]["status"] == "paid"
    assert (listed[a2.number]["status"], listed[a2.number]["amount_due"]) == ("partially_paid", "28.53")
    assert listed[a1.number]["creditor_reference"] == "RF16DE012026000001"
    # the same file again, named differently: nothing new
    again = json.loads(runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--json"]).output)
    assert (again["entries"], again["duplicate_entries"]) == (0, 3)


def test_a_csv_statement_with_decimal_commas(app, runner, db_session, tmp_path):
    entity = sepa_entity()
    a1, _, _ = three_invoices(entity)
    db.session.commit()
    path = tmp_path / "export.csv"
    path.write_text("booking_date;value_date;amount;currency;counterparty_name;counterparty_iban;remittance;reference;"
                    "end_to_end_id\n"
                    f"2026-12-03;2026-12-03;58,53;EUR;Acme Tools GmbH;;Invoice {a1.number};B-1;\n"
                    "2026-12-03;2026-12-03;-2,50;EUR;Bank;;Fee;B-2;\n", encoding="utf-8-sig")
    data = json.loads(runner.invoke(args=["bank", "import", str(path), "--entity", "DE01", "--json"]).output)
    assert (data["entries"], data["matched"], data["outgoing"]) == (2, 1, 1)
    assert db.session.get(Invoice, a1.id).status == "paid"


def test_a_long_statement_is_applied_in_chunks_each_seeing_what_the_ones_before_took(db_session, monkeypatch):
    from app.payments import cash

    monkeypatch.setattr(cash, "IMPORT_CHUNK", 1)  # every entry its own chunk
    entity = sepa_entity()
    a1, _, _ = three_invoices(entity)
    db.session.commit()
    result = import_statement(entity, statement([
        credit("30.00", "R1", remittance=a1.number), credit("28.53", "R2", remittance=a1.number),
        credit("10.00", "R3", remittance=a1.number)]), "day.xml", ACTOR)
    db.session.commit()
    assert (result.matched, result.unmatched) == (2, 1)
    assert db.session.get(Invoice, a1.id).status == "paid"
    assert f"{a1.number} is paid already" in entry("R3").match_note  # not "changed while it was matched"


def test_the_dashboard_shows_what_waits_in_the_unmatched_queue(client_as, db_session):
    entity = sepa_entity()
    three_invoices(entity)
    db.session.commit()
    import_statement(entity, statement([credit("12.34", "R1", counterparty_name="Nobody Known")]), "d.xml", ACTOR)
    db.session.commit()
    html = client_as("viewer").get("/").get_data(as_text=True)
    waiting = html[html.index('id="bank-waiting"'):]
    assert "12.34" in waiting[:200] or "12,34" in waiting[:200]
    assert "1 credit(s) in the unmatched queue" in html


def test_an_over_payment_is_used_by_the_next_billing_run(db_session):
    from app.billing.runs import execute_run, start_billing_run

    entity = sepa_entity()
    a1, a2, _ = three_invoices(entity)
    db.session.commit()
    import_statement(entity, statement([credit("120.00", "R1", remittance=f"{a1.number} {a2.number}")]), "d.xml",
                     ACTOR)
    db.session.commit()
    run = start_billing_run(entity, date(2026, 12, 1), "cli", ACTOR, enqueue=False)
    execute_run(run.run.id, inline=True)
    december = db.session.scalars(select(Invoice).where(Invoice.customer_id == a1.customer_id,
                                                        Invoice.period_start == date(2026, 12, 1))
                                  .order_by(Invoice.id)).all()
    assert [i.amount_due for i in december] == [Decimal("55.59"), Decimal("58.53")]  # 2.94 of credit used
    used = db.session.scalar(select(Payment).where(Payment.invoice_id == december[0].id))
    assert (used.source, used.amount, used.reference) == ("customer_credit", Decimal("2.94"),
                                                         f"Over-payment, bank entry #{entry('R1').id}")
