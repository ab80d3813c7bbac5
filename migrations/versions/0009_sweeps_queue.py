"""run: updated_at (the runs list polls for what changed), priority and queue position; paused
queues

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
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
    op.create_table(
        "queue_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queue_state")),
    )
    op.execute("UPDATE run SET updated_at = COALESCE(finished_at, started_at, created_at)")


def downgrade() -> None:
    op.drop_table("queue_state")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("queue_position")
        batch_op.drop_column("priority")
        batch_op.drop_index(batch_op.f("ix_run_updated_at"))
        batch_op.drop_column("updated_at")
