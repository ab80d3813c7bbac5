"""optuna sweeps: the sweep's budget, seed and pruner; why a run was pruned

Revision ID: 0015_optuna_sweeps
Revises: 0012_hardening
"""

from alembic import op
import sqlalchemy as sa

revision = "0015_optuna_sweeps"
down_revision = "0012_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("seed", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("pruner", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("pruner_options", sa.JSON(), nullable=True))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prune_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("prune_reason")
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.drop_column("pruner_options")
        batch_op.drop_column("pruner")
        batch_op.drop_column("seed")
        batch_op.drop_column("budget")
