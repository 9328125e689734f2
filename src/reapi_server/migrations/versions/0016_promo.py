"""promotion codes and their redemptions; low-balance and key spend alerts

Revision ID: 0016_promo
Revises: 0015_billing
Create Date: 2026-12-12 09:00:00.000000

New tables only. `promo_redemptions` has UNIQUE (code_id, account_id): one redemption of a
code per account, whatever races. `balance_alerts` has UNIQUE (account_id, threshold);
`key_spend_alerts` one row per key. Alerts start armed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_promo"
down_revision: str | None = "0015_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: models.credits.MAX_CREDITS, as 0004_money writes it.
_MAX_CREDITS = 10**15


def upgrade() -> None:
    op.create_table(
        "promo_codes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("redeemed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("disabled_at", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            f"credits BETWEEN 1 AND {_MAX_CREDITS}",
            name=op.f("ck_promo_codes_credits_within_bound"),
        ),
        sa.CheckConstraint(
            "redeemed >= 0 AND (max_uses IS NULL OR redeemed <= max_uses)",
            name=op.f("ck_promo_codes_uses_within_bound"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_promo_codes_code")),
    )
    op.create_table(
        "promo_redemptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["promo_codes.id"],
            name=op.f("fk_promo_redemptions_code_id_promo_codes"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_promo_redemptions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promo_redemptions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_redemptions")),
        sa.UniqueConstraint("code_id", "account_id", name="uq_promo_redemptions_code_account"),
    )
    op.create_index(
        op.f("ix_promo_redemptions_code_id"), "promo_redemptions", ["code_id"], unique=False
    )
    op.create_index(
        op.f("ix_promo_redemptions_account_id"), "promo_redemptions", ["account_id"], unique=False
    )
    op.create_table(
        "balance_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("armed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=True),
        sa.CheckConstraint(
            f"threshold BETWEEN 1 AND {_MAX_CREDITS}",
            name=op.f("ck_balance_alerts_threshold_within_bound"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_balance_alerts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_alerts")),
        sa.UniqueConstraint("account_id", "threshold", name="uq_balance_alerts_account_threshold"),
    )
    op.create_table(
        "key_spend_alerts",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("armed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=True),
        sa.Column("fired_period", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "percent BETWEEN 1 AND 100", name=op.f("ck_key_spend_alerts_percent_within_bound")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_spend_alerts_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_key_spend_alerts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_spend_alerts")),
    )
    op.create_index(
        op.f("ix_key_spend_alerts_account_id"), "key_spend_alerts", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_key_spend_alerts_account_id"), table_name="key_spend_alerts")
    op.drop_table("key_spend_alerts")
    op.drop_table("balance_alerts")
    op.drop_index(op.f("ix_promo_redemptions_account_id"), table_name="promo_redemptions")
    op.drop_index(op.f("ix_promo_redemptions_code_id"), table_name="promo_redemptions")
    op.drop_table("promo_redemptions")
    op.drop_table("promo_codes")
