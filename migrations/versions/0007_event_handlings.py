"""An event is done when each subscribed agent has acted, and a delivery's attempt is in flight until its outcome is recorded.

`event_handlings` has a row per event and subscribed agent, written by the relay and marked done by
the agent's job; the relay's watchdog enqueues again what Redis lost. `invoice_deliveries` gets
`attempt_started_at` (an attempt is in flight) and the status `unknown` (an attempt may have
reached the SMTP server, its outcome was never recorded: never sent again by itself).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('sending', 'sent', 'retrying', 'failed', 'no_email')"
NEW_STATUSES = "status IN ('sending', 'sent', 'retrying', 'failed', 'no_email', 'unknown')"


def upgrade():
    op.create_table('event_handlings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('agent_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enqueues', sa.Integer(), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f('ck_event_handlings_status')),
    sa.CheckConstraint('enqueues >= 0', name=op.f('ck_event_handlings_enqueues_not_negative')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_handlings_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_handlings')),
    sa.UniqueConstraint('event_id', 'agent_key', name=op.f('uq_event_handlings_event_id_agent_key'))
    )
    with op.batch_alter_table('event_handlings', schema=None) as batch_op:
        batch_op.create_index('ix_event_handlings_pending', ['enqueued_at'], unique=False,
                              postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('invoice_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f('ck_invoice_deliveries_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoice_deliveries_status'), NEW_STATUSES)
        batch_op.create_check_constraint(op.f('ck_invoice_deliveries_in_flight_is_sending'),
                                         "attempt_started_at IS NULL OR status = 'sending'")


def downgrade():
    op.execute("UPDATE invoice_deliveries SET status = 'failed' WHERE status = 'unknown'")
    with op.batch_alter_table('invoice_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoice_deliveries_in_flight_is_sending'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoice_deliveries_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoice_deliveries_status'), OLD_STATUSES)
        batch_op.drop_column('attempt_started_at')
    with op.batch_alter_table('event_handlings', schema=None) as batch_op:
        batch_op.drop_index('ix_event_handlings_pending', postgresql_where=sa.text("status = 'pending'"),
                            sqlite_where=sa.text("status = 'pending'"))
    op.drop_table('event_handlings')
