"""dataset: processed by a worker after upload (status, progress, error, the raw upload's key)

Revision ID: 0013_dataset_processing
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0013_dataset_processing"
down_revision = "0008_placement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Datasets uploaded before this were processed in the request: they are ready.
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "status", sa.Enum("processing", "ready", "failed", name="dataset_status",
                              native_enum=False, length=16),
            nullable=False, server_default="ready"))
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("upload_key", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_dataset_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_status"))
        batch_op.drop_column("upload_key")
        batch_op.drop_column("error")
        batch_op.drop_column("progress")
        batch_op.drop_column("status")
