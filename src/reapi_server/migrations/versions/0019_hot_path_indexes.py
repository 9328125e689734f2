"""fewer and smaller indexes on the rows every request writes

Revision ID: 0019_hot_path_indexes
Revises: 0018_topup_pending
Create Date: 2026-12-23 09:00:00.000000

Every index on a row the hot path writes is one more b-tree changed per request, written to the
write-ahead log with each commit and copied again at each checkpoint (issue 15):

- `ix_stored_outputs_account_id` goes: `ix_stored_outputs_account_created` starts with the same
  column and answers every query by account (and the cascade from `accounts`).
- `ix_credit_holds_status_expires` (status, expires_at) becomes `ix_credit_holds_held_expires`
  (expires_at) for held holds only: the sweeper's query is the only one that used it; a
  closing hold now leaves the index instead of moving within it, and the index holds only the
  requests in flight instead of every hold ever made.
- `uq_credit_ledger_source_id` covers rows with a source only (payments, refunds, disputes):
  every request's rows have none, and gave the index an entry each. NULLs never conflicted, so
  uniqueness is the same.

Only indexes change: no table is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_hot_path_indexes"
down_revision: str | None = "0018_topup_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HELD = sa.text("status = 'held'")
_SOURCED = sa.text("source_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_stored_outputs_account_id", table_name="stored_outputs")
    op.drop_index("ix_credit_holds_status_expires", table_name="credit_holds")
    op.create_index(
        "ix_credit_holds_held_expires",
        "credit_holds",
        ["expires_at"],
        sqlite_where=_HELD,
        postgresql_where=_HELD,
    )
    op.drop_index("uq_credit_ledger_source_id", table_name="credit_ledger")
    op.create_index(
        "uq_credit_ledger_source_id",
        "credit_ledger",
        ["source_id"],
        unique=True,
        sqlite_where=_SOURCED,
        postgresql_where=_SOURCED,
    )


def downgrade() -> None:
    op.drop_index("uq_credit_ledger_source_id", table_name="credit_ledger")
    op.create_index("uq_credit_ledger_source_id", "credit_ledger", ["source_id"], unique=True)
    op.drop_index("ix_credit_holds_held_expires", table_name="credit_holds")
    op.create_index("ix_credit_holds_status_expires", "credit_holds", ["status", "expires_at"])
    op.create_index("ix_stored_outputs_account_id", "stored_outputs", ["account_id"])
