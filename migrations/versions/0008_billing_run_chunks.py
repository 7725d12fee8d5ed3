"""Billing run chunks: the database knows each chunk of a run and the job carrying it.

A chunk row is written before its RQ job is enqueued. The supervisor (app/billing/supervision.py)
compares a running run's undone chunks with their jobs in Redis: a job that a dead worker
abandoned, or that Redis lost, is re-queued from the row (contracts and settings).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('billing_run_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('billing_run_id', sa.Integer(), nullable=False),
    sa.Column('first_contract_id', sa.Integer(), nullable=False),
    sa.Column('last_contract_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('contract_ids', JSON, nullable=False),
    sa.Column('settings', JSON, nullable=False),
    sa.Column('job_id', sa.String(length=80), nullable=True),
    sa.Column('requeues', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('first_contract_id <= last_contract_id AND size > 0', name=op.f('ck_billing_run_chunks_contracts')),
    sa.CheckConstraint('requeues >= 0', name=op.f('ck_billing_run_chunks_requeues_not_negative')),
    sa.ForeignKeyConstraint(['billing_run_id'], ['billing_runs.id'], name=op.f('fk_billing_run_chunks_billing_run_id_billing_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_run_chunks')),
    sa.UniqueConstraint('billing_run_id', 'first_contract_id', name=op.f('uq_billing_run_chunks_billing_run_id_first_contract_id'))
    )


def downgrade():
    op.drop_table('billing_run_chunks')
