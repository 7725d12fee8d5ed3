"""Accounts people run themselves: invitations by e-mail. An invited user's account exists with its roles and no
password until the invitation is accepted (`users.password_hash` may be NULL; nobody can sign in as such an account),
and a person may give their name. Password reset tokens need no table: they are signed and bound to the password.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=True)
        batch_op.add_column(sa.Column("name", sa.String(length=120), nullable=True))
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sends", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_invitations_email_lowercase")),
        sa.CheckConstraint("sends >= 0", name=op.f("ck_invitations_sends_not_negative")),
        sa.CheckConstraint("accepted_at IS NULL OR withdrawn_at IS NULL",
                           name=op.f("ck_invitations_accepted_or_withdrawn")),
        sa.CheckConstraint("user_id IS NOT NULL OR withdrawn_at IS NOT NULL",
                           name=op.f("ck_invitations_open_has_account")),
        sa.CheckConstraint("sent_at IS NOT NULL OR sends = 0", name=op.f("ck_invitations_sent_when_counted")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"], name=op.f("fk_invitations_invited_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("user_id", name=op.f("uq_invitations_user_id")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_invited_by_id"), ["invited_by_id"], unique=False)


def downgrade():
    op.drop_table("invitations")
    # Accounts still waiting for their invitation have no password to keep: they go.
    op.execute("DELETE FROM users WHERE password_hash IS NULL")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("name")
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=False)
