"""Invoice documents keep the EN 16931 check's warnings (findings) from when they were made.

A document is stored only when the XSD and the EN 16931 schematron find nothing fatal
(app/documents/validation.py); its warnings are kept beside it and shown on the invoice page.
Documents stored before have NULL: they were made before documents were checked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('invoice_documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('findings', JSON, nullable=True))


def downgrade():
    with op.batch_alter_table('invoice_documents', schema=None) as batch_op:
        batch_op.drop_column('findings')
