"""Sign-in hardening: a session version per user, and when the last failed login was.

`session_version` travels in the session and the remember-me cookie and is bumped on a password
change, logout, role change and disabling, so a stolen cookie stops working then.
`last_failed_login_at` lets the failed-login counter decay after a quiet period.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("last_failed_login_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(op.f("ck_users_failed_logins_not_negative"), "failed_logins >= 0")


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_failed_logins_not_negative"), type_="check")
        batch_op.drop_column("last_failed_login_at")
        batch_op.drop_column("session_version")
