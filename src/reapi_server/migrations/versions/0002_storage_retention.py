"""storage keys by task, deletion queue, retention indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000

`stored_outputs.job_id` becomes `task_id`: image requests have outputs too, and their objects live
under `outputs/<task id>/`. `pending_deletions` queues objects whose rows are gone. The
`created_at` indexes let the retention job delete by age without scanning whole tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stored_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_outputs_job_id"))
        batch_op.alter_column("job_id", new_column_name="task_id")
    with op.batch_alter_table("stored_outputs", schema=None) as batch_op:  # after the rename
        batch_op.create_index(batch_op.f("ix_stored_outputs_task_id"), ["task_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stored_outputs_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index("ix_usage_records_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("video_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_video_jobs_created_at", ["created_at"], unique=False)
    op.create_table(
        "pending_deletions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_deletions")),
    )
    with op.batch_alter_table("pending_deletions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_deletions_not_before"), ["not_before"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_deletions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_deletions_not_before"))
    op.drop_table("pending_deletions")
    with op.batch_alter_table("video_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_video_jobs_created_at")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_created_at")
    with op.batch_alter_table("stored_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_outputs_created_at"))
        batch_op.drop_index(batch_op.f("ix_stored_outputs_task_id"))
        batch_op.alter_column("task_id", new_column_name="job_id")
    with op.batch_alter_table("stored_outputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_outputs_job_id"), ["job_id"], unique=False)
