"""evaluation, generation: the worker running it and its last heartbeat, for reaping lost ones

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("evaluation", "generation")


def upgrade() -> None:
    # Rows already running keep heartbeat_at NULL: the reaper then counts from started_at.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
            batch_op.add_column(
                sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("heartbeat_at")
            batch_op.drop_column("worker")
