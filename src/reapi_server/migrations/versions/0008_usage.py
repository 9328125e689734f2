"""usage dashboard: users.time_zone; stored outputs listed per account, newest first

Revision ID: 0008_usage
Revises: 0005_identity
Create Date: 2027-01-10 09:00:00.000000

`users.time_zone` (an IANA name, "UTC" for everyone so far) is the zone the dashboard shows
times in and groups usage by day in. The outputs page lists an account's outputs newest first,
a page at a time: an index on (account_id, created_at) answers that without a sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_usage"
down_revision: str | None = "0005_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite.
    op.add_column(
        "users",
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    )
    op.create_index(
        "ix_stored_outputs_account_created", "stored_outputs", ["account_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_stored_outputs_account_created", table_name="stored_outputs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("time_zone")
