"""run: updated_at (the runs list polls for what changed), priority and queue position, its
sweep, tags and notes; sweeps; paused queues

Revision ID: 0009_sweeps_queue
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0009_sweeps_queue"
down_revision = "0013_dataset_processing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("trials", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(length=120), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("continue_on_error", sa.Boolean(), nullable=False),
        sa.Column("launched", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum("running", "paused", "completed", "failed", "cancelled",
                                    name="sweep_status", native_enum=False, length=16),
                  nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep")),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_run_sweep_id"), ["sweep_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_run_sweep_id_sweep"), "sweep", ["sweep_id"],
                                    ["id"], ondelete="SET NULL")
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_run_updated_at"), ["updated_at"], unique=False)
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
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
        batch_op.drop_column("notes")
        batch_op.drop_column("tags")
        batch_op.drop_column("queue_position")
        batch_op.drop_column("priority")
        batch_op.drop_constraint(batch_op.f("fk_run_sweep_id_sweep"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_run_sweep_id"))
        batch_op.drop_column("sweep_id")
        batch_op.drop_index(batch_op.f("ix_run_updated_at"))
        batch_op.drop_column("updated_at")
    op.drop_table("sweep")
