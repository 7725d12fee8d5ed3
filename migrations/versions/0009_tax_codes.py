"""Tax codes per legal entity (rate, EN 16931 VAT category, exemption reason, printed wording).

Contract lines reference a tax code; invoice lines keep a copy of the code's category and reason.
Every existing entity gets the default codes of its country (app/billing/vat.py), every existing
contract line the code of its rate (a standard-rate code, created if the entity has none at that
rate; zero rated at 0 %), and every existing invoice line the category it was issued with (S, or Z
at 0 %: what the documents stated until now).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:30:00.000000

"""
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from app.billing.vat import default_codes, rate_code

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CATEGORIES = "('S', 'Z', 'E', 'AE', 'K', 'G', 'O', 'L', 'M')"


def upgrade():
    op.create_table('tax_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('legal_entity_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('category', sa.String(length=2), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f('ck_tax_codes_category')),
    sa.CheckConstraint('rate >= 0 AND rate <= 100', name=op.f('ck_tax_codes_rate_range')),
    sa.CheckConstraint("category IN ('S', 'L', 'M') OR rate = 0", name=op.f('ck_tax_codes_rate_of_category')),
    sa.CheckConstraint("category <> 'S' OR rate > 0", name=op.f('ck_tax_codes_standard_rate_positive')),
    sa.CheckConstraint("category NOT IN ('E', 'AE', 'K', 'G', 'O') OR reason IS NOT NULL OR reason_code IS NOT NULL",
                       name=op.f('ck_tax_codes_exemption_reason')),
    sa.ForeignKeyConstraint(['legal_entity_id'], ['legal_entities.id'], name=op.f('fk_tax_codes_legal_entity_id_legal_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_codes')),
    sa.UniqueConstraint('legal_entity_id', 'code', name=op.f('uq_tax_codes_legal_entity_id_code'))
    )
    with op.batch_alter_table('tax_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tax_codes_legal_entity_id'), ['legal_entity_id'], unique=False)

    with op.batch_alter_table('contract_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_code_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_contract_lines_tax_code_id'), ['tax_code_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_contract_lines_tax_code_id_tax_codes'), 'tax_codes',
                                    ['tax_code_id'], ['id'])

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vat_category', sa.String(length=2), nullable=False, server_default='S'))
        batch_op.add_column(sa.Column('tax_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('exemption_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('exemption_reason_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('tax_note', sa.Text(), nullable=True))
    op.execute("UPDATE invoice_lines SET vat_category = 'Z' WHERE vat_rate = 0")
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.alter_column('vat_category', server_default=None)
        batch_op.create_check_constraint(op.f('ck_invoice_lines_vat_category'), f"vat_category IN {CATEGORIES}")
        batch_op.create_check_constraint(op.f('ck_invoice_lines_rate_of_category'),
                                         "vat_category IN ('S', 'L', 'M') OR vat_rate = 0")

    _give_existing_entities_their_codes()


RATE = sa.bindparam("rate", type_=sa.Numeric(7, 4))  # a Decimal, bound as the column's type (SQLite too)


def _give_existing_entities_their_codes():
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    codes = sa.table('tax_codes', sa.column('id', sa.Integer), sa.column('legal_entity_id', sa.Integer),
                     sa.column('code', sa.String), sa.column('rate', sa.Numeric(7, 4)),
                     sa.column('category', sa.String), sa.column('reason', sa.Text),
                     sa.column('reason_code', sa.String), sa.column('note', sa.Text),
                     sa.column('created_at', sa.DateTime(timezone=True)))
    entities = bind.execute(sa.text("SELECT id, country FROM legal_entities")).all()
    for entity_id, country in entities:
        templates = default_codes(country)
        bind.execute(codes.insert(), [dict(legal_entity_id=entity_id, code=t.code, rate=t.rate, category=t.category,
                                           reason=t.reason, reason_code=t.reason_code, note=t.note, created_at=now)
                                      for t in templates])
        rates = bind.execute(sa.text(
            "SELECT DISTINCT cl.vat_rate FROM contract_lines cl JOIN contracts c ON c.id = cl.contract_id "
            "WHERE c.legal_entity_id = :entity AND cl.vat_rate IS NOT NULL"), {"entity": entity_id}).scalars().all()
        for rate in rates:
            rate = Decimal(str(rate))
            category = "Z" if rate == 0 else "S"
            code_id = bind.execute(sa.text(
                "SELECT id FROM tax_codes WHERE legal_entity_id = :entity AND category = :category AND rate = :rate "
                "ORDER BY id LIMIT 1").bindparams(RATE), {"entity": entity_id, "category": category, "rate": rate}).scalar()
            if code_id is None:
                bind.execute(codes.insert(), [dict(legal_entity_id=entity_id, code=rate_code(country, rate),
                                                   rate=rate, category=category, created_at=now)])
                code_id = bind.execute(sa.text(
                    "SELECT id FROM tax_codes WHERE legal_entity_id = :entity AND code = :code"),
                    {"entity": entity_id, "code": rate_code(country, rate)}).scalar_one()
            bind.execute(sa.text(
                "UPDATE contract_lines SET tax_code_id = :code WHERE vat_rate = :rate AND contract_id IN "
                "(SELECT id FROM contracts WHERE legal_entity_id = :entity)").bindparams(RATE),
                {"code": code_id, "rate": rate, "entity": entity_id})


def downgrade():
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoice_lines_rate_of_category'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoice_lines_vat_category'), type_='check')
        batch_op.drop_column('tax_note')
        batch_op.drop_column('exemption_reason_code')
        batch_op.drop_column('exemption_reason')
        batch_op.drop_column('tax_code')
        batch_op.drop_column('vat_category')
    with op.batch_alter_table('contract_lines', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_contract_lines_tax_code_id_tax_codes'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contract_lines_tax_code_id'))
        batch_op.drop_column('tax_code_id')
    with op.batch_alter_table('tax_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tax_codes_legal_entity_id'))
    op.drop_table('tax_codes')
