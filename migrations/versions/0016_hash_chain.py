"""The audit chain: issued documents, payments and audit entries sealed by a hash chained per legal entity, and
triggers that make them append-only.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 09:00:00

Sealed columns of an issued invoice are those of app/chain/content.py: SEALED_INVOICE_COLUMNS (keep alike).
Records written before this revision are unsealed until `flask audit seal` chains them.
SQLite: a later batch-mode migration of these tables recreates them without triggers; it must create them again.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

SEALED_INVOICE_COLUMNS = (
    "kind", "legal_entity_id", "customer_id", "contract_id", "credited_invoice_id", "period_start", "period_end",
    "number", "sequence_year", "sequence_number", "issue_date", "due_date", "currency", "net_amount",
    "tax_amount", "total_amount", "credit_reason",
)
APPEND_ONLY = ("audit_chain_entries", "payments", "audit_entries")
MESSAGE = "sealed records are append-only"


def _postgresql() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in SEALED_INVOICE_COLUMNS)
    statements = [
        f"""CREATE FUNCTION arbill_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% of %: {MESSAGE}', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation'; END $$""",
        f"""CREATE FUNCTION arbill_refuse_sealed_line() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM invoices WHERE id = OLD.invoice_id AND number IS NOT NULL) THEN
            RAISE EXCEPTION '% of invoice_lines of an issued document: {MESSAGE}', TG_OP
              USING ERRCODE = 'restrict_violation';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$""",
    ]
    statements += [f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                   "FOR EACH ROW EXECUTE FUNCTION arbill_refuse_change()" for t in APPEND_ONLY]
    statements += [
        f"CREATE TRIGGER invoices_sealed_update BEFORE UPDATE ON invoices FOR EACH ROW "
        f"WHEN (OLD.number IS NOT NULL AND ({changed})) EXECUTE FUNCTION arbill_refuse_change()",
        "CREATE TRIGGER invoices_sealed_delete BEFORE DELETE ON invoices FOR EACH ROW "
        "WHEN (OLD.number IS NOT NULL) EXECUTE FUNCTION arbill_refuse_change()",
        "CREATE TRIGGER invoice_lines_sealed BEFORE UPDATE OR DELETE ON invoice_lines FOR EACH ROW "
        "EXECUTE FUNCTION arbill_refuse_sealed_line()",
    ]
    return statements


def _sqlite() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in SEALED_INVOICE_COLUMNS)
    statements = []
    for table in APPEND_ONLY:
        for op_ in ("UPDATE", "DELETE"):
            statements.append(f"CREATE TRIGGER {table}_append_only_{op_.lower()} BEFORE {op_} ON {table} "
                              f"BEGIN SELECT RAISE(ABORT, '{op_} of {table}: {MESSAGE}'); END")
    statements += [
        f"CREATE TRIGGER invoices_sealed_update BEFORE UPDATE ON invoices WHEN OLD.number IS NOT NULL AND ({changed}) "
        f"BEGIN SELECT RAISE(ABORT, 'UPDATE of invoices: {MESSAGE}'); END",
        "CREATE TRIGGER invoices_sealed_delete BEFORE DELETE ON invoices WHEN OLD.number IS NOT NULL "
        f"BEGIN SELECT RAISE(ABORT, 'DELETE of invoices: {MESSAGE}'); END",
    ]
    for op_ in ("UPDATE", "DELETE"):
        statements.append(
            f"CREATE TRIGGER invoice_lines_sealed_{op_.lower()} BEFORE {op_} ON invoice_lines "
            "WHEN EXISTS (SELECT 1 FROM invoices WHERE id = OLD.invoice_id AND number IS NOT NULL) "
            f"BEGIN SELECT RAISE(ABORT, '{op_} of invoice_lines of an issued document: {MESSAGE}'); END")
    return statements




def upgrade():
    op.create_table('audit_chains',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('legal_entity_id', sa.Integer(), nullable=True),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('last_seq >= 0', name=op.f('ck_audit_chains_last_seq_not_negative')),
    sa.ForeignKeyConstraint(['legal_entity_id'], ['legal_entities.id'], name=op.f('fk_audit_chains_legal_entity_id_legal_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chains')),
    sa.UniqueConstraint('scope', name=op.f('uq_audit_chains_scope'))
    )
    op.create_table('audit_chain_entries',
    sa.Column('chain_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('invoice', 'payment', 'audit')", name=op.f('ck_audit_chain_entries_kind')),
    sa.CheckConstraint('seq > 0', name=op.f('ck_audit_chain_entries_seq_positive')),
    sa.ForeignKeyConstraint(['chain_id'], ['audit_chains.id'], name=op.f('fk_audit_chain_entries_chain_id_audit_chains')),
    sa.PrimaryKeyConstraint('chain_id', 'seq', name=op.f('pk_audit_chain_entries')),
    sa.UniqueConstraint('kind', 'record_id', name=op.f('uq_audit_chain_entries_kind_record_id'))
    )
    op.create_table('audit_chain_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.Integer(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_by', sa.String(length=200), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('first_broken', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['chain_id'], ['audit_chains.id'], name=op.f('fk_audit_chain_verifications_chain_id_audit_chains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_verifications'))
    )
    with op.batch_alter_table('audit_chain_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_chain_verifications_chain_id'), ['chain_id'], unique=False)
    for statement in (_postgresql() if op.get_bind().dialect.name == "postgresql" else _sqlite()):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, table in [(f"{t}_append_only", t) for t in APPEND_ONLY] + [
                ("invoices_sealed_update", "invoices"), ("invoices_sealed_delete", "invoices"),
                ("invoice_lines_sealed", "invoice_lines")]:
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION arbill_refuse_change()")
        op.execute("DROP FUNCTION arbill_refuse_sealed_line()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only_update")
            op.execute(f"DROP TRIGGER {table}_append_only_delete")
        for name in ("invoices_sealed_update", "invoices_sealed_delete", "invoice_lines_sealed_update",
                     "invoice_lines_sealed_delete"):
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table('audit_chain_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_chain_verifications_chain_id'))
    op.drop_table('audit_chain_verifications')
    op.drop_table('audit_chain_entries')
    op.drop_table('audit_chains')
