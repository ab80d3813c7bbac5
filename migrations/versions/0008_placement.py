"""worker_host: live training workers and the devices each can give a run (placement)

Revision ID: 0008_placement
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0008_placement"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_host",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("device_kind", sa.String(length=16), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_host")),
        sa.UniqueConstraint("name", name=op.f("uq_worker_host_name")),
    )
    with op.batch_alter_table("worker_host", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_host_host"), ["host"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("worker_host", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_host_host"))
    op.drop_table("worker_host")
