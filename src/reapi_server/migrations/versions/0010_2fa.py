"""two-factor sign-in, email change, new-device alerts: TOTP columns on users, a pending stage
on web sessions, backup codes, known devices

Revision ID: 0010_2fa
Revises: 0009_key_limits
Create Date: 2026-12-06 10:00:00.000000

Only additions: new nullable or defaulted columns and two new tables, so existing rows need no
data migration (every user starts with two-factor authentication off and no known device).
On SQLite only the downgrade rebuilds tables (`users`, `web_sessions`, which carry no triggers),
with foreign keys unenforced as every migration runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_2fa"
down_revision: str | None = "0009_key_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "awaiting_second_factor", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.create_table(
        "backup_codes",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_backup_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name=op.f("pk_backup_codes")),
    )
    op.create_table(
        "known_devices",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_known_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "device_hash", name=op.f("pk_known_devices")),
    )
    op.create_index(op.f("ix_known_devices_last_seen_at"), "known_devices", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_known_devices_last_seen_at"), table_name="known_devices")
    op.drop_table("known_devices")
    op.drop_table("backup_codes")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("awaiting_second_factor")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
