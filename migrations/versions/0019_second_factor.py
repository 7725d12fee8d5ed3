"""Sign-in worthy of a finance system: a TOTP second factor with single-use recovery codes, and growing delays
between failed sign-ins instead of a lock (`locked_until` becomes `login_delayed_until`).

Every user's session version is bumped: sessions and remember-me cookies from before end once, so that nobody
stays signed in past the second factor their role now requires (remember-me is gone; see README, "Signing in").

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("locked_until", new_column_name="login_delayed_until",
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_users_totp_enabled_has_secret"),
                                         "totp_enabled_at IS NULL OR totp_secret IS NOT NULL")
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("user_id", "code_hash", name=op.f("uq_recovery_codes_user_id_code_hash")),
    )
    op.execute("UPDATE users SET session_version = session_version + 1, failed_logins = 0, "
               "last_failed_login_at = NULL, login_delayed_until = NULL")


def downgrade():
    op.drop_table("recovery_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_totp_enabled_has_secret"), type_="check")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
        batch_op.alter_column("login_delayed_until", new_column_name="locked_until",
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)
