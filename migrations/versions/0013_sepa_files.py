"""SEPA debits keep what their pain.008.001.08 asked the bank for: collection date, sequence type
(FRST/RCUR), mandate reference and debtor IBAN, set when the batch is closed; a message id is unique.

Debits collected before this revision take their customer's current mandate reference and IBAN, so a mandate
already collected from stays RCUR; other earlier items keep NULL (their batch's collection date applies).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sepa_batch_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collection_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('sequence_type', sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column('mandate_reference', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('debtor_iban', sa.String(length=34), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_sepa_batch_items_sequence_type'),
                                         "sequence_type IN ('FRST', 'RCUR')")
        batch_op.create_index(batch_op.f('ix_sepa_batch_items_mandate_reference'), ['mandate_reference'], unique=False)
    op.execute(
        "UPDATE sepa_batch_items SET "
        "mandate_reference = (SELECT c.mandate_reference FROM invoices i JOIN customers c ON c.id = i.customer_id "
        "WHERE i.id = sepa_batch_items.invoice_id), "
        "debtor_iban = (SELECT c.iban FROM invoices i JOIN customers c ON c.id = i.customer_id "
        "WHERE i.id = sepa_batch_items.invoice_id) "
        "WHERE status = 'collected'")
    with op.batch_alter_table('sepa_batches', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_sepa_batches_message_id'), ['message_id'])


def downgrade():
    with op.batch_alter_table('sepa_batches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_sepa_batches_message_id'), type_='unique')
    with op.batch_alter_table('sepa_batch_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sepa_batch_items_mandate_reference'))
        batch_op.drop_constraint(batch_op.f('ck_sepa_batch_items_sequence_type'), type_='check')
        batch_op.drop_column('debtor_iban')
        batch_op.drop_column('mandate_reference')
        batch_op.drop_column('sequence_type')
        batch_op.drop_column('collection_date')
