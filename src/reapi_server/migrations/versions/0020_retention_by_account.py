"""usage rows and outputs without an index on their age alone

Revision ID: 0020_retention_by_account
Revises: 0019_hot_path_indexes
Create Date: 2026-12-24 09:00:00.000000

Every image request writes a usage row and an output row; each index on them is one more b-tree
page in the write-ahead log per request (issue 15). `ix_usage_records_created_at` and
`ix_stored_outputs_created_at` served only the retention job, which now finds old rows account
by account through the `(account_id, created_at)` indexes the other queries use
(`retention.repository`). Only indexes change: no table is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020_retention_by_account"
down_revision: str | None = "0019_hot_path_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_usage_records_created_at", table_name="usage_records")
    op.drop_index("ix_stored_outputs_created_at", table_name="stored_outputs")


def downgrade() -> None:
    op.create_index("ix_stored_outputs_created_at", "stored_outputs", ["created_at"])
    op.create_index("ix_usage_records_created_at", "usage_records", ["created_at"])
