"""data: payments (kept 7 years, detached from deleted accounts) and accounts.deleted_at

Revision ID: 0012_data
Revises: 0011_oauth
Create Date: 2026-12-14 09:00:00.000000

`payments` holds what a person paid for credit; its `account_id` is set to NULL when the
account goes (never a cascade). `accounts.deleted_at` marks an account being deleted: nothing
more is reserved for it, and its rows go once no request of it is in flight.
Only tables and columns are added, and the downgrade drops the column in place (`ALTER TABLE
... DROP COLUMN`, SQLite 3.35+): `accounts` is never rebuilt on SQLite, so 0004_money's
triggers on it (the credit bounds) stay.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_data"
down_revision: str | None = "0011_oauth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("invoice_id", sa.String(length=255), nullable=True),
        sa.Column("invoice_url", sa.String(length=2048), nullable=True),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("detached_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_payments_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "stripe_checkout_session_id", name=op.f("uq_payments_stripe_checkout_session_id")
        ),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name=op.f("uq_payments_stripe_payment_intent_id")
        ),
    )
    op.create_index(op.f("ix_payments_account_id"), "payments", ["account_id"])
    op.create_index(op.f("ix_payments_created_at"), "payments", ["created_at"])
    op.add_column("accounts", sa.Column("deleted_at", sa.Float(), nullable=True))
    op.create_index(op.f("ix_accounts_deleted_at"), "accounts", ["deleted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_accounts_deleted_at"), table_name="accounts")
    op.drop_column("accounts", "deleted_at")  # in place: no rebuild (see the module)
    op.drop_index(op.f("ix_payments_created_at"), table_name="payments")
    op.drop_index(op.f("ix_payments_account_id"), table_name="payments")
    op.drop_table("payments")
