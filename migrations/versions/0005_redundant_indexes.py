"""Drop the single-column indexes that a unique index already leads with.

`invoices.contract_id` leads the unique (contract_id, period_start), `invoices.legal_entity_id` the
unique (legal_entity_id, number), `invoice_lines.invoice_id` the unique (invoice_id, position) and
`billing_run_items.billing_run_id` the unique (billing_run_id, contract_id): a B-tree serves
lookups by its leading column, so every query by these columns keeps an index, while every row a
billing run writes pays for one index fewer (docs/benchmarks.md, "Billing run").

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:10:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

REDUNDANT_INDEXES = (
    ("invoices", "ix_invoices_contract_id", ["contract_id"]),
    ("invoices", "ix_invoices_legal_entity_id", ["legal_entity_id"]),
    ("invoice_lines", "ix_invoice_lines_invoice_id", ["invoice_id"]),
    ("billing_run_items", "ix_billing_run_items_billing_run_id", ["billing_run_id"]),
)


def upgrade():
    for table, name, _columns in REDUNDANT_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)


def downgrade():
    for table, name, columns in REDUNDANT_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
