"""Payments are corrected by a counter-entry: a reversal is a payment of minus the original's amount that
names it (`reverses_payment_id`, at most one per payment) and says why (`reason`). A legal entity may set its
own SEPA collection lead days (1-30; empty: the Payment Collection Agent's setting).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

AMOUNT_SIGN = ("(reverses_payment_id IS NULL AND amount > 0) OR "
               "(reverses_payment_id IS NOT NULL AND amount < 0)")
REVERSAL_REASON = "reverses_payment_id IS NULL OR (reason IS NOT NULL AND length(trim(reason)) > 0)"
LEAD_DAYS = "collection_lead_days IS NULL OR collection_lead_days BETWEEN 1 AND 30"


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reverses_payment_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_payments_reverses_payment_id'), ['reverses_payment_id'])
        batch_op.create_foreign_key(batch_op.f('fk_payments_reverses_payment_id_payments'), 'payments',
                                    ['reverses_payment_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_payments_amount_positive'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_amount_sign'), AMOUNT_SIGN)
        batch_op.create_check_constraint(op.f('ck_payments_reversal_reason'), REVERSAL_REASON)
    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collection_lead_days', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_legal_entities_collection_lead_days'), LEAD_DAYS)


def downgrade():
    with op.batch_alter_table('legal_entities', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_legal_entities_collection_lead_days'), type_='check')
        batch_op.drop_column('collection_lead_days')
    # A reversal cannot be expressed without this revision: a downgrade with reversals fails on amount_positive.
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_reversal_reason'), type_='check')
        batch_op.drop_constraint(op.f('ck_payments_amount_sign'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_amount_positive'), 'amount > 0')
        batch_op.drop_constraint(batch_op.f('fk_payments_reverses_payment_id_payments'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_payments_reverses_payment_id'), type_='unique')
        batch_op.drop_column('reason')
        batch_op.drop_column('reverses_payment_id')
