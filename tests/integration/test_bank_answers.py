"""The bank's answer to a SEPA batch as ISO 20022: pain.002 status reports and camt.054 notifications, checked
against their schemas, imported all or nothing through the same rules as the CSV, and through the CLI."""
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit import Actor
from app.extensions import db
from app.models import AuditEntry, Collection, Invoice, Payment, SepaBatchItem
from app.payments.results import ResultImportFailed, import_results
from tests.bank_answer_files import camt054, pain002, valid
from tests.integration.test_bank_results import items, sepa_world

ACTOR = Actor.system("test")
OUR_IBAN = "DE02120300000000202051"


def unchanged():
    """Nothing was recorded: every debit still pending, no payment, no import audited."""
    assert {item.status for item in items()} == {"pending"}
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "sepa_results.imported")) == 0


def test_a_pain002_records_collected_and_rejected_debits(db_session):
    _, batch = sepa_world()
    first, second = items()
    xml = pain002(batch.message_id, [
        {"end_to_end_id": first.end_to_end_id, "status": "ACSC", "amount": "58.53", "collection_date": "2026-11-30",
         "creditor_id": "DE98ZZZ09999999999", "creditor_iban": OUR_IBAN},
        {"end_to_end_id": second.end_to_end_id, "status": "RJCT", "reason": "AM04"}])
    assert valid(xml, "pain.002.001.11")
    summary = import_results(io.BytesIO(xml), ACTOR)
    db.session.commit()
    assert (summary.file_format, summary.collected, summary.returned, summary.amount_collected) == \
        ("pain002", 1, 1, Decimal("58.53"))
    assert (first.status, second.status, second.return_reason) == ("collected", "returned", "AM04 insufficient funds")
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == first.invoice_id))
    assert payment.received_on == date(2026, 11, 30)  # the collection date the bank confirms
    assert db.session.get(Invoice, first.invoice_id).status == "paid"
    retry = db.session.scalar(select(Collection).where(Collection.invoice_id == second.invoice_id))
    assert retry.status == "retry_scheduled"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sepa_results.imported"))
    assert entry.details["file_format"] == "pain002" and entry.details["returned"] == 1


def test_a_pain002_acceptance_changes_nothing(db_session):
    _, batch = sepa_world()
    first, second = items()
    xml = pain002(batch.message_id, [{"end_to_end_id": first.end_to_end_id, "status": "ACCP"},
                                     {"end_to_end_id": second.end_to_end_id, "status": "ACSP"}])
    assert valid(xml, "pain.002.001.11")
    summary = import_results(io.BytesIO(xml), ACTOR)
    db.session.commit()
    assert (summary.accepted, summary.collected, summary.returned) == (2, 0, 0)
    assert {item.status for item in items()} == {"pending"}


def test_a_rejected_group_without_transactions_returns_every_debit_of_the_batch(db_session):
    _, batch = sepa_world()
    xml = pain002(batch.message_id, group_status="RJCT", group_reason="FF01")
    assert valid(xml, "pain.002.001.11")
    summary = import_results(io.BytesIO(xml), ACTOR)
    db.session.commit()
    assert summary.returned == 2
    assert {(i.status, i.return_reason) for i in items()} == {("returned", "FF01 invalid file format")}
    with pytest.raises(ResultImportFailed) as again:  # the same report twice: nothing left to answer
        import_results(io.BytesIO(xml), ACTOR)
    assert again.value.errors == [f"line 5: GrpSts: every debit of the message {batch.message_id} has its answer "
                                  "already; this report adds nothing"]


@pytest.mark.parametrize("version", ["03", "10"])
def test_older_pain002_versions_are_read_the_same_way(db_session, version):
    _, batch = sepa_world()
    first, second = items()
    xml = pain002(batch.message_id, [{"end_to_end_id": first.end_to_end_id, "status": "ACSC"},
                                     {"end_to_end_id": second.end_to_end_id, "status": "RJCT", "reason": "MD01"}],
                  version=version)
    summary = import_results(io.BytesIO(xml), ACTOR)
    assert (summary.collected, summary.returned, second.return_reason) == (1, 1, "MD01 no mandate")


@pytest.mark.parametrize("version", ["08", "02"])
def test_a_camt054_books_collections_and_returns(db_session, version):
    _, batch = sepa_world(customers=("Bolt", "Starship Technologies", "Acme"))
    first, second, third = items()
    xml = camt054(OUR_IBAN, [
        {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": first.end_to_end_id,
         "mandate": "MANDATE-1"},
        {"amount": "58.53", "side": "DBIT", "booked": "2026-12-03", "end_to_end_id": second.end_to_end_id,
         "return_reason": "MD06", "reversal": True},
        {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": third.end_to_end_id,
         "status": "PDNG"},                                          # not booked yet: no change
        {"amount": "10.00", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": "CUSTOMER-REF-9",
         "family": "RCDT"}], version=version)                        # a transfer: left to reconciliation
    assert valid(xml, f"camt.054.001.{version}")
    summary = import_results(io.BytesIO(xml), ACTOR, file_format="camt054")
    db.session.commit()
    assert (summary.file_format, summary.collected, summary.returned) == ("camt054", 1, 1)
    assert (first.status, second.status, third.status) == ("collected", "returned", "pending")
    assert second.return_reason == "MD06 refund requested by the debtor"
    assert db.session.scalar(select(Payment.received_on).where(Payment.invoice_id == first.invoice_id)) == date(2026, 12, 2)


def test_bad_files_name_what_is_wrong_and_change_nothing(db_session):
    entity, batch = sepa_world()
    first, second = items()
    good = {"end_to_end_id": first.end_to_end_id, "status": "ACSC"}
    cases = {
        "unknown format": (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>',
                           "is not a bank answer Arbill reads"),
        "truncated": (pain002(batch.message_id, [good])[:300], "not well-formed XML"),
        "another creditor's batch": (pain002("ARBXX99000001", [good]), "OrgnlMsgId: debit"),
        "another creditor's batch, group status": (pain002("ARBXX99000001", group_status="ACSC"),
                                                   "is not a SEPA batch we sent"),
        "another account": (pain002(batch.message_id, [{**good, "creditor_iban": "FR7630006000011234567890189"}]),
                            "IBAN: the file is for the account FR7630006000011234567890189"),
        "another creditor id": (pain002(batch.message_id, [{**good, "creditor_id": "FR72ZZZ123456"}]),
                                "CdtrSchmeId: the debit was collected for the creditor FR72ZZZ123456"),
        "unknown end-to-end id": (pain002(batch.message_id, [good, {"end_to_end_id": "NOT-OURS-1", "status": "ACSC"}]),
                                  "OrgnlEndToEndId: no debit with the end-to-end id NOT-OURS-1"),
        "an amount we did not debit": (pain002(batch.message_id, [{**good, "amount": "99.00"}]),
                                       "Amt: the bank says 99,00\xa0€, our debit"),
        "camt.054 of another account": (camt054("FR7630006000011234567890189", [
            {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": first.end_to_end_id}]),
            "IBAN: the file is for the account FR76"),
        "camt.054 of a debit not ours": (camt054(OUR_IBAN, [
            {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": "ELSEWHERE-1"}]),
            "EndToEndId: no debit with the end-to-end id ELSEWHERE-1"),
    }
    for name, (data, expected) in cases.items():
        with pytest.raises(ResultImportFailed) as failure:
            import_results(io.BytesIO(data), ACTOR)
        db.session.rollback()
        assert all(error.startswith("line ") for error in failure.value.errors), (name, failure.value.errors)
        assert any(expected in error for error in failure.value.errors), (name, failure.value.errors)
        unchanged()
    with pytest.raises(ResultImportFailed) as failure:  # a pain.002 announced as something else
        import_results(io.BytesIO(pain002(batch.message_id, [good])), ACTOR, file_format="camt054")
    assert "the file is a pain002 but --format camt054 was asked for" in failure.value.errors[0]
    unchanged()


def test_one_bad_transaction_stops_the_whole_report(db_session):
    _, batch = sepa_world()
    first, second = items()
    xml = pain002(batch.message_id, [{"end_to_end_id": first.end_to_end_id, "status": "ACSC"},
                                     {"end_to_end_id": second.end_to_end_id, "status": "XXXX"}])
    with pytest.raises(ResultImportFailed) as failure:
        import_results(io.BytesIO(xml), ACTOR)
    assert failure.value.errors == ["line 10: TxSts: XXXX is not a transaction status Arbill knows (ACSC, ACCP, "
                                    "ACSP, ACTC, ACWC, PDNG, RCVD, RJCT)"]
    db.session.rollback()
    unchanged()


def test_the_cli_imports_a_pain002_and_refuses_a_bad_camt054(app, runner, db_session, tmp_path):
    _, batch = sepa_world()
    first, second = items()
    report = tmp_path / "status.xml"
    report.write_bytes(pain002(batch.message_id, [{"end_to_end_id": first.end_to_end_id, "status": "ACSC"},
                                                  {"end_to_end_id": second.end_to_end_id, "status": "RJCT",
                                                   "reason": "AC04"}]))
    bad = tmp_path / "notification.xml"
    bad.write_bytes(camt054("FR7630006000011234567890189", [
        {"amount": "58.53", "side": "CRDT", "booked": "2026-12-02", "end_to_end_id": first.end_to_end_id}]))
    refused = runner.invoke(args=["sepa", "results", str(bad)])
    assert refused.exit_code == 1
    assert "IBAN: the file is for the account FR7630006000011234567890189" in refused.output
    unchanged()
    result = runner.invoke(args=["sepa", "results", str(report), "--format", "pain002", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["format"], summary["collected"], summary["returned"], summary["amount_collected"]) == \
        ("pain002", 1, 1, "58.53")
    db.session.expire_all()
    assert [i.status for i in items()] == ["collected", "returned"]
    assert items()[1].return_reason == "AC04 account closed"


def test_a_payment_block_status_answers_only_the_debits_of_that_block(db_session):
    from lxml import etree

    from app.payments.sepa import close_batch

    # Pre-notified later (due 2026-12-21): the second debit is collected on another day, in its own payment block.
    _, batch = sepa_world(close=False, payment_terms=(14, 25))
    first, second = items()
    assert db.session.get(Invoice, second.invoice_id).due_date == date(2026, 12, 21)
    close_batch(batch, ACTOR, date(2026, 11, 27))
    db.session.commit()
    blocks = {block.findtext("{*}PmtInfId"): {e.text for e in block.iter("{*}EndToEndId")}
              for block in etree.fromstring(batch.xml).iter("{*}PmtInf")}
    assert len(blocks) == 2
    [later] = [pid for pid, ids in blocks.items() if second.end_to_end_id in ids]
    xml = pain002(batch.message_id, payment_statuses=[(later, "RJCT", "MS03")])
    assert valid(xml, "pain.002.001.11")
    summary = import_results(io.BytesIO(xml), ACTOR)
    db.session.commit()
    assert (summary.returned, first.status, second.status) == (1, "pending", "returned")
    with pytest.raises(ResultImportFailed) as unknown:
        import_results(io.BytesIO(pain002(batch.message_id, payment_statuses=[("NOT-OURS", "RJCT", None)])), ACTOR)
    assert "OrgnlPmtInfId: NOT-OURS is not a payment block of the message" in unknown.value.errors[0]
