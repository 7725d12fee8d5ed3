"""The audit chain (GoBD): issued documents, payments and audit entries are sealed per legal entity; verifying
recomputes the chain and names the first record that does not match; the database refuses to change or delete a
sealed record."""
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from app.audit import Actor, record
from app.chain.verifying import verify
from app.extensions import db
from app.models import AuditEntry, ChainEntry, Payment
from app.payments.ledger import record_payment, reverse_payment
from tests.factories import make_contract, make_entity
from tests.integration.test_billing_concurrency import in_thread
from tests.integration.test_credit_notes import credit, invoices, run

ADMIN = Actor.system("test")


def books(entity):
    """A billing run of three contracts, payments, a credit note and a reversal."""
    for n in range(3):
        make_contract(entity, f"C-{n}", start=date(2026, 11, 1))
    db.session.commit()
    run(entity)
    first, second, third = invoices()
    paid = record_payment(first.id, first.total_amount, date(2026, 11, 27), "bank 1", ADMIN)
    payment = record_payment(second.id, Decimal("10.00"), date(2026, 11, 27), "bank 2", ADMIN)
    db.session.commit()
    credit(third)
    reverse_payment(payment.id, "wrong invoice", ADMIN)
    db.session.commit()
    return first, paid


def tamper(sql, **params):
    """Change a row directly, as someone with database access would (the triggers disabled)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL session_replication_role = replica"))
        db.session.execute(text(sql), params)
    else:
        triggers = db.session.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
        for name, _sql in triggers:
            db.session.execute(text(f"DROP TRIGGER {name}"))
        db.session.execute(text(sql), params)
        for _name, sql_ in triggers:
            db.session.execute(text(sql_))
    db.session.commit()


def chain_kinds(entity):
    return [e.kind for e in db.session.scalars(select(ChainEntry).order_by(ChainEntry.chain_id, ChainEntry.seq))]


def test_the_books_verify_and_every_record_is_sealed_in_its_entitys_chain(db_session):
    entity = make_entity()
    books(entity)
    result = verify(entity, ADMIN)
    db.session.commit()
    # 3 invoices + 1 credit note, 3 payments (one a reversal), and their audit entries
    kinds = chain_kinds(entity)
    assert (kinds.count("invoice"), kinds.count("payment")) == (4, 3)
    assert result.ok and result.first_broken is None
    assert result.records == len(kinds)


@pytest.mark.parametrize("change, kind, reason", [
    ("UPDATE invoices SET total_amount = total_amount + 1, net_amount = net_amount + 1 WHERE id = :invoice",
     "invoice", "the record was changed after it was sealed"),
    ("UPDATE invoice_lines SET description = 'other' WHERE invoice_id = :invoice",
     "invoice", "the record was changed after it was sealed"),
    ("UPDATE payments SET amount = 1 WHERE id = :payment", "payment", "the record was changed after it was sealed"),
    ("DELETE FROM payments WHERE id = :payment", "payment", "the record was deleted"),
])
def test_a_record_changed_behind_the_applications_back_is_named(db_session, change, kind, reason):
    entity = make_entity()
    invoice, payment = books(entity)
    ids = {"invoice": invoice.id, "payment": payment.id}
    tamper(change, **ids)
    result = verify(entity, ADMIN)
    db.session.commit()
    assert not result.ok
    assert (result.first_broken.kind, result.first_broken.id, result.first_broken.reason) == (kind, ids[kind], reason)
    sealed = db.session.scalar(select(ChainEntry).where(ChainEntry.kind == kind,
                                                        ChainEntry.record_id == result.first_broken.id))
    assert result.first_broken.seq == sealed.seq


def test_an_audit_entry_rewritten_and_a_forged_link_are_named(db_session):
    entity = make_entity()
    books(entity)
    entry = db.session.scalar(select(ChainEntry).where(ChainEntry.kind == "audit").order_by(ChainEntry.seq))
    tamper("UPDATE audit_entries SET actor_label = 'someone else' WHERE id = :id", id=entry.record_id)
    broken = verify(entity, ADMIN).first_broken
    assert (broken.kind, broken.id, broken.seq) == ("audit", entry.record_id, entry.seq)
    db.session.rollback()
    # re-hashing the record's entry does not help: the next entry's link no longer follows
    tamper("UPDATE audit_chain_entries SET digest = :d WHERE chain_id = :c AND seq = :s",
           d="0" * 64, c=entry.chain_id, s=entry.seq)
    broken = verify(entity, ADMIN).first_broken
    assert (broken.seq, broken.reason) == (entry.seq, "the entry's hash does not match the entry")


def test_the_database_refuses_to_change_or_delete_sealed_records(db_session):
    entity = make_entity()
    invoice, payment = books(entity)
    for sql in ("UPDATE payments SET amount = 1 WHERE id = :payment",
                "DELETE FROM payments WHERE id = :payment",
                "UPDATE invoices SET total_amount = 1 WHERE id = :invoice",
                "UPDATE invoices SET number = 'X-1' WHERE id = :invoice",
                "DELETE FROM invoices WHERE id = :invoice",
                "UPDATE invoice_lines SET net_amount = 0 WHERE invoice_id = :invoice",
                "DELETE FROM invoice_lines WHERE invoice_id = :invoice",
                "UPDATE audit_entries SET action = 'x'",
                "DELETE FROM audit_entries",
                "UPDATE audit_chain_entries SET digest = 'x'",
                "DELETE FROM audit_chain_entries"):
        with pytest.raises(DatabaseError, match="sealed records are append-only"):
            db.session.execute(text(sql), {"invoice": invoice.id, "payment": payment.id})
        db.session.rollback()
    # what legitimately changes on an issued invoice still does
    db.session.execute(text("UPDATE invoices SET status = 'void', void_reason = 'test', amount_due = 0 WHERE id = :i"),
                       {"i": invoice.id})
    db.session.commit()
    assert verify(entity, ADMIN).ok


def test_a_record_written_without_its_seal_is_named(db_session):
    entity = make_entity()
    invoice, _payment = books(entity)
    tamper("INSERT INTO payments (invoice_id, amount, received_on, reference, source, recorded_by, created_at) "
           "VALUES (:i, 5, '2026-11-28', 'forged', 'manual', 'x', '2026-11-28 10:00:00')", i=invoice.id)
    forged = db.session.scalar(select(Payment.id).where(Payment.reference == "forged"))
    broken = verify(entity, ADMIN).first_broken
    assert (broken.seq, broken.kind, broken.id) == (None, "payment", forged)


def test_concurrent_writers_of_one_entity_keep_one_chain(app, db_session):
    entity = make_entity()
    books(entity)
    entity_id = entity.id
    db.session.commit()

    def write(n):
        for i in range(10):
            record("test.concurrent", "legal_entity", entity_id, ADMIN, legal_entity_id=entity_id, n=n, i=i)
            db.session.commit()

    threads = [in_thread(app, write, n) for n in range(3)]
    for thread, errors in threads:
        thread.join()
        assert errors == []
    db.session.expire_all()
    concurrent = db.session.scalars(select(ChainEntry.record_id).join(AuditEntry, AuditEntry.id == ChainEntry.record_id)
                                    .where(ChainEntry.kind == "audit", AuditEntry.action == "test.concurrent")).all()
    assert len(concurrent) == 30
    result = verify(entity, ADMIN)
    assert result.ok, result.first_broken


def test_the_cli_answers_json_and_exit_codes(app, db_session):
    entity = make_entity()
    invoice, _payment = books(entity)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify", "--entity", entity.code, "--json"])
    assert ok.exit_code == 0, ok.output
    answer = json.loads(ok.output)
    assert (answer["entity"], answer["ok"], answer["first_broken"]) == (entity.code, True, None)
    assert answer["records"] > 10 and answer["verified_at"]
    tamper("UPDATE invoices SET due_date = '2027-01-31' WHERE id = :i", i=invoice.id)
    broken = runner.invoke(args=["audit", "verify", "--entity", entity.code, "--json"])
    assert broken.exit_code == 1
    first = json.loads(broken.output)["first_broken"]
    assert (first["kind"], first["id"], first["reason"]) == ("invoice", invoice.id,
                                                            "the record was changed after it was sealed")
    plain = runner.invoke(args=["audit", "verify", "--entity", entity.code])
    assert plain.exit_code == 1 and f"invoice #{invoice.id}" in plain.output
    unknown = runner.invoke(args=["audit", "verify", "--entity", "XX99"])
    assert unknown.exit_code == 1 and "unknown legal entity" in unknown.output


def test_the_settings_page_shows_the_last_verification_and_verifies_now(db_session, client_as):
    entity = make_entity()
    invoice, _payment = books(entity)
    client = client_as("admin")
    page = client.get("/settings/audit-trail")
    assert page.status_code == 200 and "never verified" in page.text
    answer = client.post(f"/settings/audit-trail/{entity.id}/verify", follow_redirects=True)
    assert answer.status_code == 200 and "the chain holds" in answer.text
    assert "admin" in answer.text  # by whom
    tamper("UPDATE invoices SET currency = 'USD' WHERE id = :i", i=invoice.id)
    answer = client.post(f"/settings/audit-trail/{entity.id}/verify", follow_redirects=True)
    assert f"invoice #{invoice.id}" in answer.text and "changed after it was sealed" in answer.text
