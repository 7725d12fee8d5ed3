"""Running totals for the AR aging report: open balances per customer and credit sales per day, kept by triggers.

`open_balances` (legal entity, currency, customer → open amount, open invoices) and `daily_sales` (legal entity,
currency, issue date → credit sales) are maintained by AFTER triggers on `invoices`, in the transaction that
changes the invoice (PostgreSQL: per statement, from its transition tables; SQLite: per row); both are filled
from the invoices already there. `ix_invoices_open_due`: the open invoices
by (legal entity, due date), covering on PostgreSQL.

Keep alike with the application (tests/integration/test_receivables.py compares them with a full recomputation):
an invoice is open when its status is one of OPEN_STATUSES (app/billing/status.py) and amount_due > 0; it is a
credit sale when its status is one of SALES_STATUSES (app/reports/aging.py), a credit note counting negative.
SQLite: a later batch-mode migration of `invoices` recreates it without triggers; it must create them again
(as for migration 0016).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 23:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

OPEN = "{t}.status = 'issued' AND {t}.amount_due > 0"
SALE = "{t}.status IN ('issued', 'paid', 'credited')"
SIGNED_TOTAL = "CASE WHEN {t}.kind = 'credit_note' THEN -{t}.total_amount ELSE {t}.total_amount END"
# SQLite: an UPDATE that changes none of these changes neither total.
WATCHED = ("status", "amount_due", "total_amount", "kind", "legal_entity_id", "customer_id", "currency", "issue_date")
TRIGGERS = ("invoices_receivables_insert", "invoices_receivables_update", "invoices_receivables_delete")


def _add(t: str) -> list[str]:
    """SQLite (row triggers): upserts that add invoice `t` (NEW) to the totals, each only when it counts."""
    return [
        f"INSERT INTO open_balances (legal_entity_id, currency, customer_id, open_amount, open_invoices) "
        f"SELECT {t}.legal_entity_id, {t}.currency, {t}.customer_id, {t}.amount_due, 1 WHERE {OPEN.format(t=t)} "
        "ON CONFLICT (legal_entity_id, currency, customer_id) DO UPDATE SET "
        "open_amount = open_balances.open_amount + excluded.open_amount, "
        "open_invoices = open_balances.open_invoices + 1",
        f"INSERT INTO daily_sales (legal_entity_id, currency, issue_date, amount) "
        f"SELECT {t}.legal_entity_id, {t}.currency, {t}.issue_date, {SIGNED_TOTAL.format(t=t)} "
        f"WHERE {SALE.format(t=t)} "
        "ON CONFLICT (legal_entity_id, currency, issue_date) DO UPDATE SET "
        "amount = daily_sales.amount + excluded.amount",
    ]


def _remove(t: str) -> list[str]:
    """SQLite (row triggers): updates that take invoice `t` (OLD) out of the totals, each only when it counted."""
    return [
        f"UPDATE open_balances SET open_amount = open_amount - {t}.amount_due, open_invoices = open_invoices - 1 "
        f"WHERE legal_entity_id = {t}.legal_entity_id AND currency = {t}.currency AND customer_id = {t}.customer_id "
        f"AND {OPEN.format(t=t)}",
        f"UPDATE daily_sales SET amount = amount - ({SIGNED_TOTAL.format(t=t)}) "
        f"WHERE legal_entity_id = {t}.legal_entity_id AND currency = {t}.currency AND issue_date = {t}.issue_date "
        f"AND {SALE.format(t=t)}",
    ]


def _statement_upserts(sources: list[tuple[str, str]]) -> str:
    """PostgreSQL: the changes of one statement, from its transition tables (`sources`: (table, "+" or "-")),
    summed per key and applied once per key, in key order (so two statements lock rows in the same order)."""
    opened = " UNION ALL ".join(
        f"SELECT legal_entity_id, currency, customer_id, {sign}amount_due AS amount, {sign}1 AS invoices FROM {t} "
        f"WHERE {OPEN.format(t=t)}" for t, sign in sources)
    sold = " UNION ALL ".join(
        f"SELECT legal_entity_id, currency, issue_date, {sign}({SIGNED_TOTAL.format(t=t)}) AS amount FROM {t} "
        f"WHERE {SALE.format(t=t)}" for t, sign in sources)
    return f"""
            INSERT INTO open_balances (legal_entity_id, currency, customer_id, open_amount, open_invoices)
            SELECT legal_entity_id, currency, customer_id, SUM(amount), SUM(invoices) FROM ({opened}) d
            GROUP BY legal_entity_id, currency, customer_id HAVING SUM(invoices) <> 0 OR SUM(amount) <> 0
            ORDER BY legal_entity_id, currency, customer_id
            ON CONFLICT (legal_entity_id, currency, customer_id) DO UPDATE SET
              open_amount = open_balances.open_amount + excluded.open_amount,
              open_invoices = open_balances.open_invoices + excluded.open_invoices;
            INSERT INTO daily_sales (legal_entity_id, currency, issue_date, amount)
            SELECT legal_entity_id, currency, issue_date, SUM(amount) FROM ({sold}) d
            GROUP BY legal_entity_id, currency, issue_date HAVING SUM(amount) <> 0
            ORDER BY legal_entity_id, currency, issue_date
            ON CONFLICT (legal_entity_id, currency, issue_date) DO UPDATE SET
              amount = daily_sales.amount + excluded.amount;"""


def _postgresql() -> list[str]:
    # Statement-level: a billing run's INSERT of a thousand invoices of one issue date updates that day's row once
    # (a row trigger would update it a thousand times in one transaction, each a new row version to walk past).
    return [
        f"""CREATE FUNCTION arbill_receivables() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN{_statement_upserts([("new_rows", "")])}
          ELSIF TG_OP = 'UPDATE' THEN{_statement_upserts([("new_rows", ""), ("old_rows", "-")])}
          ELSE{_statement_upserts([("old_rows", "-")])}
          END IF;
          RETURN NULL;
        END $$""",
        "CREATE TRIGGER invoices_receivables_insert AFTER INSERT ON invoices REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION arbill_receivables()",
        "CREATE TRIGGER invoices_receivables_update AFTER UPDATE ON invoices "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION arbill_receivables()",
        "CREATE TRIGGER invoices_receivables_delete AFTER DELETE ON invoices REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION arbill_receivables()",
    ]


def _sqlite() -> list[str]:
    changed = ", ".join(WATCHED)
    return [
        f"CREATE TRIGGER invoices_receivables_insert AFTER INSERT ON invoices BEGIN {'; '.join(_add('NEW'))}; END",
        f"CREATE TRIGGER invoices_receivables_update AFTER UPDATE OF {changed} ON invoices "
        f"BEGIN {'; '.join(_remove('OLD') + _add('NEW'))}; END",
        f"CREATE TRIGGER invoices_receivables_delete AFTER DELETE ON invoices BEGIN {'; '.join(_remove('OLD'))}; END",
    ]


BACKFILL = [
    f"INSERT INTO open_balances (legal_entity_id, currency, customer_id, open_amount, open_invoices) "
    f"SELECT legal_entity_id, currency, customer_id, SUM(amount_due), COUNT(*) FROM invoices "
    f"WHERE {OPEN.format(t='invoices')} GROUP BY legal_entity_id, currency, customer_id",
    f"INSERT INTO daily_sales (legal_entity_id, currency, issue_date, amount) "
    f"SELECT legal_entity_id, currency, issue_date, SUM({SIGNED_TOTAL.format(t='invoices')}) FROM invoices "
    f"WHERE {SALE.format(t='invoices')} GROUP BY legal_entity_id, currency, issue_date",
]


def upgrade():
    op.create_table('open_balances',
    sa.Column('legal_entity_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('open_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('open_invoices', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_open_balances_customer_id_customers')),
    sa.ForeignKeyConstraint(['legal_entity_id'], ['legal_entities.id'], name=op.f('fk_open_balances_legal_entity_id_legal_entities')),
    sa.PrimaryKeyConstraint('legal_entity_id', 'currency', 'customer_id', name=op.f('pk_open_balances'))
    )
    op.create_table('daily_sales',
    sa.Column('legal_entity_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.ForeignKeyConstraint(['legal_entity_id'], ['legal_entities.id'], name=op.f('fk_daily_sales_legal_entity_id_legal_entities')),
    sa.PrimaryKeyConstraint('legal_entity_id', 'currency', 'issue_date', name=op.f('pk_daily_sales'))
    )
    op.create_index('ix_invoices_open_due', 'invoices', ['legal_entity_id', 'due_date'], unique=False,
                    postgresql_include=['currency', 'customer_id', 'amount_due', 'issue_date'],
                    postgresql_where=sa.text("status IN ('issued') AND amount_due > 0"),
                    sqlite_where=sa.text("status IN ('issued') AND amount_due > 0"))
    if op.get_bind().dialect.name == "postgresql":
        # No invoice changes between the backfill and the triggers (SQLite's write lock already says so).
        op.execute("LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE")
    for statement in BACKFILL + (_postgresql() if op.get_bind().dialect.name == "postgresql" else _sqlite()):
        op.execute(statement)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON invoices" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION arbill_receivables()")
    op.drop_index('ix_invoices_open_due', table_name='invoices')
    op.drop_table('daily_sales')
    op.drop_table('open_balances')
