"""Data migrations: what existing installations have is carried over, not lost."""
import os
from decimal import Decimal

import pytest
from sqlalchemy import text

from app import create_app
from app.extensions import db
from tests.conftest import fresh_postgres_database, make_config


@pytest.fixture
def empty_app(tmp_path, redis_url):
    """An app on its own empty database (PostgreSQL when the suite runs on it), migrated step by step by the test."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield create_app(make_config(f"sqlite:///{tmp_path / 'migrations.db'}", redis_url))
        return
    with fresh_postgres_database(base, "arbill_migrations") as url:
        app = create_app(make_config(url, redis_url))
        yield app
        with app.app_context():
            db.engine.dispose()


def insert_entity(conn) -> None:
    """Legal entity 1, DE01, with the columns every schema version since 0001 has."""
    conn.execute(text("INSERT INTO legal_entities (id, code, name, country, currency, timezone, invoice_prefix, "
                      "locale, created_at) VALUES (1, 'DE01', 'Demo GmbH', 'DE', 'EUR', 'UTC', 'DE01', 'de_DE', "
                      "'2026-01-01 00:00:00')"))


def test_tax_codes_migration_gives_existing_lines_the_code_of_their_rate(empty_app):
    from flask_migrate import upgrade

    with empty_app.app_context():
        upgrade(revision="0008")
        conn = db.session.connection()
        insert_entity(conn)
        conn.execute(text("INSERT INTO customers (id, legal_entity_id, name, payment_method, created_at) "
                          "VALUES (1, 1, 'Bolt', 'manual', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO contracts (id, legal_entity_id, customer_id, reference, status, currency, "
                          "frequency, start_date, created_at) VALUES (1, 1, 1, 'C-1', 'active', 'EUR', 'monthly', "
                          "'2026-01-01', '2026-01-01 00:00:00')"))
        for position, rate in enumerate(("19", "19.45", "0", "7"), start=1):
            conn.execute(text("INSERT INTO contract_lines (contract_id, position, description, quantity, unit_price, "
                              "vat_rate) VALUES (1, :p, 'Line', 1, 10, :r)"), {"p": position, "r": rate})
        conn.execute(text(
            "INSERT INTO invoices (id, legal_entity_id, customer_id, contract_id, period_start, period_end, number, "
            "sequence_year, sequence_number, issue_date, due_date, currency, net_amount, tax_amount, total_amount, "
            "amount_due, status, created_at) VALUES (1, 1, 1, 1, '2026-01-01', '2026-01-31', 'DE01-2026-000001', "
            "2026, 1, '2026-01-01', '2026-01-15', 'EUR', 20, 1.9, 21.9, 21.9, 'issued', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_price, "
                          "vat_rate, net_amount) VALUES (1, 1, 'A', 1, 10, 19, 10), (1, 2, 'B', 1, 10, 0, 10)"))
        db.session.commit()

        upgrade()

        lines = db.session.execute(text(
            "SELECT cl.vat_rate, t.code, t.category FROM contract_lines cl JOIN tax_codes t ON t.id = cl.tax_code_id "
            "ORDER BY cl.position")).all()
        assert [(Decimal(str(r)).normalize(), c, k) for r, c, k in lines] == [
            (Decimal(19), "DE_VAT_19", "S"), (Decimal("19.45"), "DE_VAT_19_45", "S"), (Decimal(0), "DE_ZERO", "Z"),
            (Decimal(7), "DE_VAT_7", "S")]
        assert db.session.execute(text("SELECT count(*) FROM tax_codes WHERE code = 'DE_RC'")).scalar() == 1
        assert db.session.execute(text("SELECT vat_category FROM invoice_lines ORDER BY position")).scalars().all() == [
            "S", "Z"]
        # rebuilding tables (SQLite's batch mode) lost nothing that references them
        for table, count in (("invoice_lines", 2), ("invoices", 1), ("customers", 1), ("contract_lines", 4)):
            assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == count, table


def test_sepa_files_migration_keeps_collected_mandates_recurring(empty_app):
    from flask_migrate import upgrade

    with empty_app.app_context():
        upgrade(revision="0012")
        conn = db.session.connection()
        insert_entity(conn)
        conn.execute(text("INSERT INTO customers (id, legal_entity_id, name, payment_method, iban, mandate_reference, "
                          "mandate_date, created_at) VALUES (1, 1, 'Bolt', 'sepa_debit', 'DE89370400440532013000', "
                          "'MANDATE-1', '2026-01-15', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO contracts (id, legal_entity_id, customer_id, reference, status, currency, "
                          "frequency, start_date, created_at) VALUES (1, 1, 1, 'C-1', 'active', 'EUR', 'monthly', "
                          "'2026-01-01', '2026-01-01 00:00:00')"))
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO invoices (id, legal_entity_id, customer_id, contract_id, period_start, period_end, number, "
                "sequence_year, sequence_number, issue_date, due_date, currency, net_amount, tax_amount, total_amount, "
                "amount_due, status, kind, created_at) VALUES (:n, 1, 1, 1, :start, :start, :number, 2026, :n, '2026-01-01', "
                "'2026-01-15', 'EUR', 20, 1.9, 21.9, 21.9, 'issued', 'invoice', '2026-01-01 00:00:00')"),
                {"n": n, "start": f"2026-0{n}-01", "number": f"DE01-2026-00000{n}"})
            conn.execute(text("INSERT INTO collections (id, invoice_id, method, status, attempts, created_at, "
                              "updated_at) VALUES (:n, :n, 'sepa_debit', 'in_batch', 0, '2026-01-01 00:00:00', "
                              "'2026-01-01 00:00:00')"), {"n": n})
        conn.execute(text("INSERT INTO sepa_batches (id, legal_entity_id, status, message_id, item_count, created_at) "
                          "VALUES (1, 1, 'closed', 'ARBDE0100000120260110', 2, '2026-01-10 00:00:00')"))
        conn.execute(text("INSERT INTO sepa_batch_items (batch_id, invoice_id, collection_id, amount, end_to_end_id, "
                          "attempt, status) VALUES (1, 1, 1, 21.9, 'DE01-2026-000001-1', 1, 'collected'), "
                          "(1, 2, 2, 21.9, 'DE01-2026-000002-1', 1, 'returned')"))
        db.session.commit()

        upgrade()

        rows = db.session.execute(text("SELECT status, mandate_reference, debtor_iban, sequence_type "
                                       "FROM sepa_batch_items ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("collected", "MANDATE-1", "DE89370400440532013000", None),
                                            ("returned", None, None, None)]
