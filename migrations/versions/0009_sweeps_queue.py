"""run: updated_at (the runs list polls for what changed)

Revision ID: 0009_sweeps_queue
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0009_sweeps_queue"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_run_updated_at"), ["updated_at"], unique=False)
    op.execute("UPDATE run SET updated_at = COALESCE(finished_at, started_at, created_at)")


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_updated_at"))
        batch_op.drop_column("updated_at")
