"""tombstones of a deleted account's top-ups that could still be paid

Revision ID: 0024_deleted_top_ups
Revises: 0023_rollup_finished_rows
Create Date: 2026-12-06 23:45:00.000000

A top-up went with its account. A payment already on its way at the deletion (paid seconds
before, its webhook not applied yet; a bank debit still processing, which may succeed days
later) then found nothing of ours and was recorded as another integration's event: the money
taken, nothing credited, nothing refunded. Deleting an account now keeps, for 30 days, the ids
of each of its top-ups still open or pending (ours, and Stripe's Checkout Session and
PaymentIntent when known; no amount, no account), so such a payment is refunded and recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_deleted_top_ups"
down_revision: str | None = "0023_rollup_finished_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deleted_top_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("deleted_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_top_ups")),
    )
    op.create_index(op.f("ix_deleted_top_ups_deleted_at"), "deleted_top_ups", ["deleted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deleted_top_ups_deleted_at"), table_name="deleted_top_ups")
    op.drop_table("deleted_top_ups")
