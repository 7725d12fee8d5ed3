"""Indexes for the lists' keyset paging (app/paging.py): one per order people sort a list by, ending with the id.

Each list reads "the 25 rows after this row in this order" (`WHERE (keys) > (values) ORDER BY keys LIMIT 26`);
an index on (legal_entity_id, sort column, id) answers that by reading 26 index entries, on the first page and
the 500th alike. Orders whose leading column is already unique per entity (customer name, contract reference,
run number) use the existing unique indexes; by customer, the customers' unique (entity, name) and each one's rows
by customer_id (an incremental sort by id within a customer). The bank queue's are partial: only waiting credits; and each of its
rows looks up the open invoices due exactly the credit's amount, which without an index reads every invoice.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 23:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

OPEN = "status IN ('issued') AND amount_due > 0"  # Invoice.is_open as app/models/invoices.py OPEN writes it
QUEUED = "direction = 'credit' AND status IN ('unmatched', 'partially_matched')"
INDEXES = (
    ("ix_invoices_list_period", "invoices", ["legal_entity_id", "period_start", "id"], None),
    ("ix_invoices_list_number", "invoices", ["legal_entity_id", "number", "id"], None),
    ("ix_invoices_list_issue_date", "invoices", ["legal_entity_id", "issue_date", "id"], None),
    ("ix_invoices_list_due_date", "invoices", ["legal_entity_id", "due_date", "id"], None),
    ("ix_invoices_list_total", "invoices", ["legal_entity_id", "total_amount", "id"], None),
    ("ix_invoices_list_status", "invoices", ["legal_entity_id", "status", "id"], None),
    ("ix_invoices_list_run", "invoices", ["billing_run_id", "sequence_year", "sequence_number", "id"], None),
    # The bank queue's rows each look up open invoices due exactly the credit's amount (bank_queue.candidates).
    ("ix_invoices_open_amount", "invoices", ["legal_entity_id", "currency", "amount_due", "due_date", "id"], OPEN),
    ("ix_contracts_list_start", "contracts", ["legal_entity_id", "start_date", "id"], None),
    ("ix_billing_runs_list_started", "billing_runs", ["legal_entity_id", "started_at", "id"], None),
    ("ix_bank_entries_list_booked", "bank_entries", ["legal_entity_id", "booking_date", "id"], QUEUED),
    ("ix_bank_entries_list_amount", "bank_entries", ["legal_entity_id", "amount", "id"], QUEUED),
    ("ix_audit_entries_list_at", "audit_entries", ["legal_entity_id", "at", "id"], None),
)


def upgrade():
    for name, table, columns, where in INDEXES:
        kwargs = {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)} if where else {}
        op.create_index(name, table, columns, unique=False, **kwargs)


def downgrade():
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
