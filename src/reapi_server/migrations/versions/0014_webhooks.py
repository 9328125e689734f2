"""webhooks: deliveries (an outbox), a job's webhook URL, a key's default URL and signing salt

Revision ID: 0014_webhooks
Revises: 0013_usage
Create Date: 2026-12-09 09:00:00.000000

`webhook_deliveries` is written in the transaction that makes a video job final and emptied by
the background senders; `video_jobs.webhook_url` is where a job announces its end;
`api_keys.webhook_*` hold a key's default URL (disabled after a 410 Gone) and the random salts
its signing secret is derived from (no secret is stored).

Columns are added with plain ALTER TABLE (SQLite adds a column in place): `video_jobs` is never
copied, so the triggers of 0003 stay. The downgrade drops them the same way (SQLite 3.35+).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_webhooks"
down_revision: str | None = "0013_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY_COLUMNS: list[sa.Column[object]] = [
    sa.Column("webhook_url", sa.String(length=2048), nullable=True),
    sa.Column("webhook_disabled_at", sa.Float(), nullable=True),
    sa.Column("webhook_salt", sa.String(length=64), nullable=True),
    sa.Column("webhook_previous_salt", sa.String(length=64), nullable=True),
    sa.Column("webhook_rotated_at", sa.Float(), nullable=True),
]


def upgrade() -> None:
    for column in _KEY_COLUMNS:
        op.add_column("api_keys", column)
    op.add_column("video_jobs", sa.Column("webhook_url", sa.String(length=2048), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("video_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("video_object", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webhook_deliveries_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(op.f("ix_webhook_deliveries_account_id"), "webhook_deliveries", ["account_id"])
    op.create_index(op.f("ix_webhook_deliveries_created_at"), "webhook_deliveries", ["created_at"])
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.execute("ALTER TABLE video_jobs DROP COLUMN webhook_url")
    for column in reversed(_KEY_COLUMNS):
        op.execute(f"ALTER TABLE api_keys DROP COLUMN {column.name}")
