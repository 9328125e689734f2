"""key limits: spend per period, model allowlist, expiry, last use; management keys; credit
holds remember the key and period they count against (disabled accounts came with 0008_admin)

Revision ID: 0009_key_limits
Revises: 0008_admin
Create Date: 2026-12-10 09:00:00.000000

Columns only, each nullable or with a default: SQLite adds them in place (no table copy, so
the triggers of 0003 and 0004_money stay). Existing keys start with no limits, a monthly
period and a spend counter of zero; holds open at upgrade time count against no key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009_key_limits"
down_revision: str | None = "0008_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS: list[tuple[str, sa.Column[Any]]] = [
    ("api_keys", sa.Column("kind", sa.String(16), nullable=False, server_default="model")),
    ("api_keys", sa.Column("spend_limit", sa.BigInteger(), nullable=True)),
    (
        "api_keys",
        sa.Column("spend_period", sa.String(16), nullable=False, server_default="monthly"),
    ),
    ("api_keys", sa.Column("period_start", sa.Float(), nullable=False, server_default="0")),
    ("api_keys", sa.Column("period_spend", sa.BigInteger(), nullable=False, server_default="0")),
    ("api_keys", sa.Column("model_allowlist", sa.Text(), nullable=True)),
    ("api_keys", sa.Column("expires_at", sa.Float(), nullable=True)),
    ("api_keys", sa.Column("last_used_at", sa.Float(), nullable=True)),
    ("credit_holds", sa.Column("api_key_id", sa.String(40), nullable=True)),
    ("credit_holds", sa.Column("period_start", sa.Float(), nullable=True)),
]


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, column)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column in reversed(_COLUMNS):
        if postgres:
            op.drop_column(table, column.name)
        else:
            # SQLite (3.35+) drops an unindexed column in place: no copy, triggers kept.
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")
