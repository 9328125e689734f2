"""oauth: identities linked from GitHub and Google, and the sign-ins under way

Revision ID: 0011_oauth
Revises: 0010_2fa
Create Date: 2026-12-12 10:00:00.000000

Two new tables, nothing else touched: `oauth_identities` (provider, the provider's user id, the
email it gave at link time, the user) and `oauth_requests` (a sign-in's hashed state, PKCE
verifier and nonce, bound to a browser, for ten minutes; or a sign-up waiting for consent).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_oauth"
down_revision: str | None = "0010_2fa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_identities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oauth_identities_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_identities")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_oauth_identities_provider")),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_oauth_identities_user_id")),
    )
    op.create_table(
        "oauth_requests",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("code_verifier", sa.String(length=128), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=True),
        sa.Column("next_url", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oauth_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_oauth_requests")),
    )
    op.create_index("ix_oauth_requests_browser", "oauth_requests", ["browser_hash", "purpose"])
    op.create_index(op.f("ix_oauth_requests_expires_at"), "oauth_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_requests_expires_at"), table_name="oauth_requests")
    op.drop_index("ix_oauth_requests_browser", table_name="oauth_requests")
    op.drop_table("oauth_requests")
    op.drop_table("oauth_identities")
