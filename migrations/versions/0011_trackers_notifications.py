"""trackers and notifications: a run's metric mirrors and their status, its own notification URLs, and one row per message sent (or failing)

Revision ID: 0011_trackers_notifications
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_trackers_notifications"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_urls", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("trackers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tracker_status", sa.JSON(), nullable=True))
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notification_run_id", "notification", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_notification_run_id", table_name="notification")
    op.drop_table("notification")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("tracker_status")
        batch_op.drop_column("trackers")
        batch_op.drop_column("notify_urls")
