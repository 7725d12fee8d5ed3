"""The CLI of issue 11: payments record/reverse/list, invoices list's partially_paid, entities update (bank, SEPA,
collection lead days), customers list/update."""
import json
from datetime import date, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Customer, LegalEntity, Payment, SepaBatch
from app.payments.collection import start_collection
from tests.factories import make_entity
from tests.integration.test_collection import make_sepa_customer
from tests.integration.test_credit_notes import billed

NUMBER = "DE01-2026-000001"


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def seed(app, **contract):
    with app.app_context():
        billed(make_entity(), **contract)


def invoice_row(runner):
    code, out = invoke(runner, "invoices", "list", "--entity", "DE01", "--json")
    assert code == 0, out
    row, = json.loads(out)
    return row["status"], row["amount_due"]


def test_record_list_and_reverse_payments(app, runner):
    seed(app)
    assert invoice_row(runner) == ("issued", "58.53")
    code, out = invoke(runner, "payments", "record", NUMBER, "--entity", "DE01", "--amount", "20.00",
                       "--date", "2026-11-28", "--reference", "stmt 7", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first == {"payment_id": first["payment_id"], "invoice": NUMBER, "amount": "20.00", "currency": "EUR",
                     "amount_due": "38.53", "status": "partially_paid"}
    assert invoice_row(runner) == ("partially_paid", "38.53")

    code, out = invoke(runner, "payments", "reverse", str(first["payment_id"]), "--reason", "bounced", "--json")
    assert code == 0, out
    reversal = json.loads(out)
    assert (reversal["payment_id"], reversal["amount"], reversal["amount_due"], reversal["status"]) == (
        first["payment_id"], "20.00", "58.53", "issued")
    assert invoice_row(runner) == ("issued", "58.53")  # nothing paid any more: not partially paid

    code, out = invoke(runner, "payments", "reverse", str(first["payment_id"]), "--reason", "again")
    assert code == 1 and f"payment #{first['payment_id']} was reversed already" in out
    code, out = invoke(runner, "payments", "record", NUMBER, "--entity", "DE01", "--amount", "58.53",
                       "--date", "2026-12-01")
    assert code == 0 and "0.00 EUR still due (paid)" in out, out
    assert invoice_row(runner) == ("paid", "0.00")

    code, out = invoke(runner, "payments", "list", "--entity", "DE01", "--invoice", NUMBER, "--json")
    rows = json.loads(out)
    assert [(r["amount"], r["source"], r["reference"], r["reverses"], r["reversed_by"]) for r in rows] == [
        ("20.00", "manual", "stmt 7", None, reversal["reversal_id"]),
        ("-20.00", "manual", "stmt 7", first["payment_id"], None),
        ("58.53", "manual", "", None, None)]
    assert rows[0]["received_on"] == "2026-11-28"


def test_record_refuses_bad_input_and_changes_nothing(app, runner):
    seed(app)
    with app.app_context():
        tomorrow = db.session.scalar(select(LegalEntity)).today() + timedelta(days=1)
    for args, message in [
        (["--amount", "10.00", "--date", tomorrow.isoformat()], f"received_on: {tomorrow.isoformat()} is in the future"),
        (["--amount", "100.00", "--date", "2026-11-28"], "amount: 100.00 is more than the 58.53 EUR still due"),
        (["--amount", "ten", "--date", "2026-11-28"], "amount:"),
        (["--amount", "10.00", "--date", "28.11.2026"], "received_on:"),
    ]:
        code, out = invoke(runner, "payments", "record", NUMBER, "--entity", "DE01", *args)
        assert code == 1 and message in out, out
    code, out = invoke(runner, "payments", "record", "DE01-2026-999999", "--entity", "DE01", "--amount", "1",
                       "--date", "2026-11-28")
    assert code == 1 and "no invoice numbered 'DE01-2026-999999' in legal entity DE01" in out
    code, out = invoke(runner, "payments", "reverse", "4711", "--reason", "x")
    assert code == 1 and "no payment #4711" in out
    with app.app_context():
        assert db.session.scalar(select(Payment)) is None
    assert invoice_row(runner) == ("issued", "58.53")


def test_entities_update_sets_bank_details_and_lead_days_which_the_sepa_close_uses(app, runner):
    with app.app_context():
        entity = make_entity()
        make_sepa_customer(entity)
        db.session.commit()
    code, out = invoke(runner, "entities", "update", "DE01", "--iban", "DE02 1203 0000 0000 2020 51",
                       "--bic", "byladem1001", "--sepa-creditor-id", "DE98ZZZ09999999999",
                       "--collection-lead-days", "9", "--json")
    assert code == 0, out
    assert json.loads(out)["changes"] == {"iban": "DE02120300000000202051", "bic": "BYLADEM1001",
                                          "sepa_creditor_id": "DE98ZZZ09999999999", "collection_lead_days": 9}
    for args, message in [(["--collection-lead-days", "31"], "collection_lead_days: 31 is outside 1-30 days"),
                          (["--iban", "DE02120300000000202052"], "iban:"),
                          (["--bic", "BYLA"], "bic: 'BYLA' is not a BIC"),
                          (["--sepa-creditor-id", "nope"], "sepa_creditor_id:")]:
        code, out = invoke(runner, "entities", "update", "DE01", *args)
        assert code == 1 and message in out, out
    code, out = invoke(runner, "entities", "update", "XX99", "--bic", "BYLADEM1001")
    assert code == 1 and "unknown legal entity 'XX99'" in out
    code, out = invoke(runner, "entities", "list", "--json")
    listed, = json.loads(out)
    assert (listed["iban"], listed["bic"], listed["collection_lead_days"]) == ("DE02120300000000202051", "BYLADEM1001", 9)
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert (entity.iban, entity.bic, entity.collection_lead_days, entity.name) == (
            "DE02120300000000202051", "BYLADEM1001", 9, "DE01 GmbH")  # what was not given stays
        invoice = billed(entity, customer="Bolt")  # due 2026-12-10 (14 days after 26 Nov)
        start_collection(invoice.id)
    code, out = invoke(runner, "sepa", "close", "--entity", "DE01", "--json")
    assert code == 0, out
    with app.app_context():
        today = db.session.scalar(select(LegalEntity)).today()
        batch = db.session.scalar(select(SepaBatch))
        assert batch.collection_date >= max(today + timedelta(days=9), date(2026, 12, 10))
    code, out = invoke(runner, "entities", "update", "DE01", "--collection-lead-days", "")
    assert code == 0 and "collection_lead_days 9 → None" in out, out


def test_entities_add_takes_the_bank_and_sepa_options(app, runner):
    code, out = invoke(runner, "entities", "add", "--code", "AT01", "--name", "Demo GmbH", "--country", "AT",
                       "--currency", "EUR", "--iban", "AT61 1904 3002 3457 3201", "--bic", "BKAUATWW",
                       "--sepa-creditor-id", "AT61ZZZ01234567890", "--collection-lead-days", "5")
    assert code == 0, out
    with app.app_context():
        entity = db.session.scalar(select(LegalEntity))
        assert (entity.iban, entity.bic, entity.sepa_creditor_id, entity.collection_lead_days) == (
            "AT611904300234573201", "BKAUATWW", "AT61ZZZ01234567890", 5)


def test_customers_update_switches_to_sepa_debit_with_the_web_forms_rules(app, runner):
    seed(app, customer="Bolt GmbH")
    code, out = invoke(runner, "customers", "update", "Bolt GmbH", "--entity", "DE01", "--payment-method",
                       "sepa_debit")
    assert code == 1 and "iban: IBAN (needed for sepa_debit) is required" in out, out
    code, out = invoke(runner, "customers", "update", "bolt gmbh", "--entity", "DE01", "--payment-method",
                       "sepa_debit", "--iban", "DE89370400440532013000", "--mandate-reference", "M-1",
                       "--mandate-date", "2026-01-15", "--json")
    assert code == 0, out
    assert json.loads(out)["changes"] == {"payment_method": "sepa_debit", "iban": "…3000",
                                         "mandate_reference": "M-1", "mandate_date": "2026-01-15"}
    code, out = invoke(runner, "customers", "update", "Nobody", "--entity", "DE01", "--email", "a@b.example")
    assert code == 1 and "DE01 has no customer named 'Nobody'" in out
    code, out = invoke(runner, "customers", "list", "--entity", "DE01", "--json")
    customer, = json.loads(out)
    assert (customer["name"], customer["payment_method"], customer["mandate_reference"], customer["mandate_date"]) == (
        "Bolt GmbH", "sepa_debit", "M-1", "2026-01-15")
    with app.app_context():
        assert db.session.scalar(select(Customer)).email == "c-1@example.com"  # not given: unchanged
        audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.updated"))
        assert audit.actor_label == "cli"
