"""Credit notes: a second kind of document in `invoices`, its own number series, customer credits.

An issued invoice is corrected by a credit note (UNTDID 1001 code 381), never by changing its
status. Both documents share `invoices` (like ERPNext's returns); `kind` tells them apart and is
also the number series (`invoice_sequences.series`). "One invoice per contract period" becomes
"one *effective* invoice per contract period" (a partial unique index): a fully credited invoice
frees its period for the corrected invoice. A credit note on a paid invoice leaves a customer
credit, settled into later invoices as a payment of source `customer_credit`, or refunded. The
Invoice Delivery Agent also e-mails credit notes (`credit_note.issued`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00.000000

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

EFFECTIVE = sa.text("kind = 'invoice' AND status <> 'credited'")
OLD_INVOICE_STATUSES = "status IN ('draft', 'issued', 'paid', 'void')"
NEW_INVOICE_STATUSES = "status IN ('draft', 'issued', 'paid', 'void', 'credited')"
OLD_SOURCES = "source IN ('manual', 'sepa_debit')"
NEW_SOURCES = "source IN ('manual', 'sepa_debit', 'customer_credit')"
OLD_ITEM_STATUSES = "status IN ('pending', 'collected', 'returned')"
NEW_ITEM_STATUSES = "status IN ('pending', 'collected', 'returned', 'withdrawn')"
OLD_TRIGGERS = ["invoice.issued", "manual.trigger"]
NEW_TRIGGERS = ["invoice.issued", "credit_note.issued", "manual.trigger"]


def upgrade():
    op.create_table('customer_credits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('legal_entity_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('applied_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('refunded_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('refund_reference', sa.String(length=140), nullable=True),
    sa.Column('refunded_on', sa.Date(), nullable=True),
    sa.Column('refunded_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_customer_credits_amount_positive')),
    sa.CheckConstraint('applied_amount + refunded_amount - amount < 0.00005', name=op.f('ck_customer_credits_used_within_amount')),
    sa.CheckConstraint('applied_amount >= 0 AND refunded_amount >= 0', name=op.f('ck_customer_credits_used_not_negative')),
    sa.ForeignKeyConstraint(['credit_note_id'], ['invoices.id'], name=op.f('fk_customer_credits_credit_note_id_invoices')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_credits_customer_id_customers')),
    sa.ForeignKeyConstraint(['legal_entity_id'], ['legal_entities.id'], name=op.f('fk_customer_credits_legal_entity_id_legal_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_credits')),
    sa.UniqueConstraint('credit_note_id', name=op.f('uq_customer_credits_credit_note_id'))
    )
    with op.batch_alter_table('customer_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_credits_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_credits_legal_entity_id'), ['legal_entity_id'], unique=False)

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credited_position', sa.Integer(), nullable=True))

    # The series joins the sequence's key: invoices and credit notes are numbered apart.
    with op.batch_alter_table('invoice_sequences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series', sa.String(length=16), nullable=False, server_default='invoice'))
        batch_op.drop_constraint(op.f('pk_invoice_sequences'), type_='primary')
        batch_op.create_primary_key(op.f('pk_invoice_sequences'), ['legal_entity_id', 'series', 'year'])
        batch_op.create_check_constraint(op.f('ck_invoice_sequences_series'), "series IN ('invoice', 'credit_note')")
    with op.batch_alter_table('invoice_sequences', schema=None) as batch_op:
        batch_op.alter_column('series', server_default=None)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='invoice'))
        batch_op.add_column(sa.Column('credited_invoice_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('credit_reason', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('uq_invoices_contract_id_period_start'), type_='unique')
        batch_op.drop_constraint(op.f('uq_invoices_legal_entity_id_sequence_year_sequence_number'), type_='unique')
        batch_op.drop_constraint(op.f('ck_invoices_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoices_status'), NEW_INVOICE_STATUSES)
        batch_op.create_check_constraint(op.f('ck_invoices_kind'), "kind IN ('invoice', 'credit_note')")
        batch_op.create_check_constraint(op.f('ck_invoices_credit_note_credits'),
                                         "(kind = 'credit_note') = (credited_invoice_id IS NOT NULL)")
        batch_op.create_check_constraint(
            op.f('ck_invoices_credit_note_issued_nothing_due'),
            "kind = 'invoice' OR (status = 'issued' AND amount_due = 0 AND credit_reason IS NOT NULL)")
        batch_op.create_check_constraint(op.f('ck_invoices_credit_reason_on_credit_notes'),
                                         "kind = 'credit_note' OR credit_reason IS NULL")
        batch_op.create_index('ix_invoices_contract_id_period_start', ['contract_id', 'period_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_credited_invoice_id'), ['credited_invoice_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_legal_entity_id_kind_sequence_year_sequence_number'), ['legal_entity_id', 'kind', 'sequence_year', 'sequence_number'])
        batch_op.create_index('uq_invoices_one_effective_per_period', ['contract_id', 'period_start'], unique=True,
                              postgresql_where=EFFECTIVE, sqlite_where=EFFECTIVE)
        batch_op.create_foreign_key(batch_op.f('fk_invoices_credited_invoice_id_invoices'), 'invoices', ['credited_invoice_id'], ['id'])
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.alter_column('kind', server_default=None)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_credit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payments_customer_credit_id'), ['customer_credit_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_payments_customer_credit_id_customer_credits'), 'customer_credits', ['customer_credit_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_payments_source'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_source'), NEW_SOURCES)
        batch_op.create_check_constraint(op.f('ck_payments_credit_source'),
                                         "(source = 'customer_credit') = (customer_credit_id IS NOT NULL)")

    with op.batch_alter_table('sepa_batch_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_sepa_batch_items_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_sepa_batch_items_status'), NEW_ITEM_STATUSES)

    _set_delivery_triggers(NEW_TRIGGERS)
    now = datetime.now(timezone.utc)
    rules = sa.table(
        "orchestration_rules",
        sa.column("event_type", sa.String), sa.column("agent_key", sa.String), sa.column("enabled", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    # Delivery only: a credit note is not collected.
    op.bulk_insert(rules, [{"event_type": "credit_note.issued", "agent_key": "invoice_delivery", "enabled": True,
                            "created_at": now, "updated_at": now}])


def _set_delivery_triggers(triggers):
    op.get_bind().execute(sa.text("UPDATE agent_definitions SET trigger_events = :triggers WHERE key = 'invoice_delivery'")
                          .bindparams(sa.bindparam("triggers", type_=sa.JSON)), {"triggers": triggers})


def downgrade():
    op.execute("DELETE FROM orchestration_rules WHERE event_type = 'credit_note.issued'")
    _set_delivery_triggers(OLD_TRIGGERS)
    op.execute("UPDATE sepa_batch_items SET status = 'returned' WHERE status = 'withdrawn'")
    with op.batch_alter_table('sepa_batch_items', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_sepa_batch_items_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_sepa_batch_items_status'), OLD_ITEM_STATUSES)
        batch_op.drop_column('note')

    op.execute("DELETE FROM payments WHERE source = 'customer_credit'")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_credit_source'), type_='check')
        batch_op.drop_constraint(op.f('ck_payments_source'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_source'), OLD_SOURCES)
        batch_op.drop_constraint(batch_op.f('fk_payments_customer_credit_id_customer_credits'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_payments_customer_credit_id'))
        batch_op.drop_column('customer_credit_id')

    # Credit notes cannot be expressed without this revision: a downgrade with credit notes fails here.
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_credited_invoice_id_invoices'), type_='foreignkey')
        batch_op.drop_index('uq_invoices_one_effective_per_period', postgresql_where=EFFECTIVE, sqlite_where=EFFECTIVE)
        batch_op.drop_constraint(batch_op.f('uq_invoices_legal_entity_id_kind_sequence_year_sequence_number'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_invoices_credited_invoice_id'))
        batch_op.drop_index('ix_invoices_contract_id_period_start')
        for name in ('credit_reason_on_credit_notes', 'credit_note_issued_nothing_due', 'credit_note_credits', 'kind',
                     'status'):
            batch_op.drop_constraint(op.f(f'ck_invoices_{name}'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoices_status'), OLD_INVOICE_STATUSES)
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_legal_entity_id_sequence_year_sequence_number'), ['legal_entity_id', 'sequence_year', 'sequence_number'])
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_contract_id_period_start'), ['contract_id', 'period_start'])
        batch_op.drop_column('credit_reason')
        batch_op.drop_column('credited_invoice_id')
        batch_op.drop_column('kind')

    op.execute("DELETE FROM invoice_sequences WHERE series <> 'invoice'")
    with op.batch_alter_table('invoice_sequences', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoice_sequences_series'), type_='check')
        batch_op.drop_constraint(op.f('pk_invoice_sequences'), type_='primary')
        batch_op.create_primary_key(op.f('pk_invoice_sequences'), ['legal_entity_id', 'year'])
        batch_op.drop_column('series')

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_column('credited_position')

    with op.batch_alter_table('customer_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_credits_legal_entity_id'))
        batch_op.drop_index(batch_op.f('ix_customer_credits_customer_id'))

    op.drop_table('customer_credits')
