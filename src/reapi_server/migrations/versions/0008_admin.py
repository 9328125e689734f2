"""admin: the audit log of operators' actions; accounts.disabled_at

Revision ID: 0008_admin
Revises: 0007_fleet
Create Date: 2026-12-09 09:00:00.000000

`audit_log`: one row per admin action (who, what, when, on which account or person; metadata
only). No foreign keys: the log outlives what it mentions.

`accounts.disabled_at`: set while an operator has disabled the account (its keys are refused).
Added and dropped in place on both databases (SQLite 3.35+ drops a plain column without
rebuilding the table, so `accounts`' triggers from 0004_money stay).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_admin"
down_revision: str | None = "0007_fleet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("actor_user_id", sa.String(length=40), nullable=True),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("target_user_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"])
    op.create_index("ix_audit_log_account_created", "audit_log", ["account_id", "created_at"])
    op.create_index("ix_audit_log_target_user_id", "audit_log", ["target_user_id"])
    op.add_column("accounts", sa.Column("disabled_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "disabled_at")
    op.drop_index("ix_audit_log_target_user_id", table_name="audit_log")
    op.drop_index("ix_audit_log_account_created", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_created_at"), table_name="audit_log")
    op.drop_table("audit_log")
