"""generation: per answer (base, tuned) its token counts and latency, for the playground

Revision ID: 0014_ux
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0014_ux"
down_revision = "0011_trackers_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_stats", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation", schema=None) as batch_op:
        batch_op.drop_column("answer_stats")
