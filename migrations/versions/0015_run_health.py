"""run.health_flags: a finished run's health flags, kept so the compare page need not re-read
its series

Revision ID: 0015_run_health
Revises: 0015_optuna_sweeps
"""

from alembic import op
import sqlalchemy as sa

revision = "0015_run_health"
down_revision = "0015_optuna_sweeps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_flags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("health_flags")
