"""mail: notices (policy change notices, newsletter issues) and their per-user deliveries

Revision ID: 0006_mail
Revises: 0005_identity
Create Date: 2026-12-05 12:00:00.000000

`notice_deliveries` has one row per (notice, user): its primary key is what keeps a user from
getting one notice twice, however often an interrupted run is started again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_mail"
down_revision: str | None = "0005_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("effective_on", sa.String(length=10), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("digest", name=op.f("uq_notices_digest")),
    )
    op.create_table(
        "notice_deliveries",
        sa.Column("notice_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("outbox_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name=op.f("fk_notice_deliveries_notice_id_notices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notice_deliveries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notice_id", "user_id", name=op.f("pk_notice_deliveries")),
    )
    op.create_index("ix_notice_deliveries_user_id", "notice_deliveries", ["user_id"])


def downgrade() -> None:
    op.drop_table("notice_deliveries")
    op.drop_table("notices")
