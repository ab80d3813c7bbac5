"""revoked_session: logout revokes the session server-side; worker_presence: live workers' queues

Revision ID: 0012_hardening
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0012_hardening"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_session",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_revoked_session")),
    )
    with op.batch_alter_table("revoked_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revoked_session_expires_at"), ["expires_at"],
                              unique=False)
    op.create_table(
        "worker_presence",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_presence")),
    )


def downgrade() -> None:
    op.drop_table("worker_presence")
    with op.batch_alter_table("revoked_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revoked_session_expires_at"))
    op.drop_table("revoked_session")
