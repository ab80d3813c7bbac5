"""run hosts, rendezvous endpoint and waiting reason; gang_node: one host's part of a multi-host
run

Revision ID: 0017_gang_placement
Revises: 0016_dataset_heartbeat
"""

from alembic import op
import sqlalchemy as sa

revision = "0017_gang_placement"
down_revision = "0016_dataset_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hosts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rendezvous_endpoint", sa.String(length=300),
                                      nullable=True))
        batch_op.add_column(sa.Column("waiting_reason", sa.Text(), nullable=True))
    op.create_table(
        "gang_node",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("node_rank", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE",
                                name=op.f("fk_gang_node_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gang_node")),
        sa.UniqueConstraint("run_id", "attempt", "node_rank", name="uq_gang_node_rank"),
    )
    with op.batch_alter_table("gang_node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gang_node_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gang_node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gang_node_run_id"))
    op.drop_table("gang_node")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("waiting_reason")
        batch_op.drop_column("rendezvous_endpoint")
        batch_op.drop_column("hosts")
