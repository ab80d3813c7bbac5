"""dataset processing heartbeat: worker, heartbeat_at, attempts, published_at, publish_count

Revision ID: 0016_dataset_heartbeat
Revises: 0015_run_health
"""

from alembic import op
import sqlalchemy as sa

revision = "0016_dataset_heartbeat"
down_revision = "0015_run_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("publish_count", sa.Integer(), server_default="0",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        for column in ("publish_count", "published_at", "attempts", "heartbeat_at", "worker"):
            batch_op.drop_column(column)
