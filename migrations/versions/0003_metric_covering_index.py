"""metric: covering index for series reads

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_run_id_name_step")
        batch_op.create_index(
            "ix_metric_series", ["run_id", "name", "step", "value", "special"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_series")
        batch_op.create_index("ix_metric_run_id_name_step", ["run_id", "name", "step"], unique=False)
