"""Billing run write path: drop the outbox and run-item indexes nothing queries by; chunks of 2,000.

Every index on a table the billing run COPYs into costs each row written. Nothing in the code
queries `events` by type, legal entity or billing run (the relay reads undispatched events by id,
ix_events_undispatched), nor `billing_run_items` by contract alone (a run's items are read by run,
served by the (billing_run_id, contract_id) unique index). At 100,000 contracts the three events
indexes alone cost 1.6 s of the 13.3 s COPY into the real tables (docs/benchmarks.md).

The Billing Run Agent's default chunk size goes from 500 to 2,000 contracts (fewer, cheaper jobs),
in the stored configuration too unless someone changed it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UNUSED_INDEXES = (
    ("events", "ix_events_type", ["type"]),
    ("events", "ix_events_legal_entity_id", ["legal_entity_id"]),
    ("events", "ix_events_billing_run_id", ["billing_run_id"]),
    ("billing_run_items", "ix_billing_run_items_contract_id", ["contract_id"]),
)


def _set_chunk_size(old: int, new: int) -> None:
    agents = sa.table("agent_definitions", sa.column("id", sa.Integer), sa.column("key", sa.String),
                      sa.column("configuration", sa.JSON))
    connection = op.get_bind()
    for agent_id, configuration in connection.execute(
        sa.select(agents.c.id, agents.c.configuration).where(agents.c.key == "billing_run")
    ):
        if (configuration or {}).get("chunk_size") == old:
            connection.execute(agents.update().where(agents.c.id == agent_id)
                               .values(configuration={**configuration, "chunk_size": new}))


def upgrade():
    for table, name, _columns in UNUSED_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    _set_chunk_size(500, 2000)


def downgrade():
    _set_chunk_size(2000, 500)
    for table, name, columns in UNUSED_INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
