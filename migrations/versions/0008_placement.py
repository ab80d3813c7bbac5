"""worker_host: live training workers and their devices; device_reservation: a device per run

Revision ID: 0008_placement
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0008_placement"
down_revision = "0010_exports_deployments"
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
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_host")),
        sa.UniqueConstraint("name", name=op.f("uq_worker_host_name")),
    )
    with op.batch_alter_table("worker_host", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_host_host"), ["host"], unique=False)
    op.create_table(
        "device_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE",
                                name=op.f("fk_device_reservation_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_reservation")),
        sa.UniqueConstraint("host", "device", name="uq_device_reservation_device"),
    )
    with op.batch_alter_table("device_reservation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_reservation_run_id"), ["run_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_reservation_run_id"))
    op.drop_table("device_reservation")
    with op.batch_alter_table("worker_host", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_host_host"))
    op.drop_table("worker_host")
