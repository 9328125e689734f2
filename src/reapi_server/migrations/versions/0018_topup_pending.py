"""automatic top-ups settling later; what a payment charged with tax on top

Revision ID: 0018_topup_pending
Revises: 0017_billing_guards
Create Date: 2026-12-22 09:00:00.000000

`uq_top_ups_one_auto_in_flight` now covers `pending` automatic top-ups too (a PaymentIntent
that Stripe is still processing, a bank debit that settles in days): one charge in flight per
account until it settles, whatever the status. `top_ups.checked_at` is when its PaymentIntent
was last fetched again (at most every so often while it settles). `payments.amount_subtotal`
is the price before tax; `payments.amount` is now what was charged (tax included), the base of
refunds and disputes. Only added columns and one index made again: no table is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_topup_pending"
down_revision: str | None = "0017_billing_guards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_top_ups_one_auto_in_flight"


def _in_flight(where: str) -> None:
    op.drop_index(_INDEX, table_name="top_ups")
    condition = sa.text(where)
    op.create_index(
        _INDEX,
        "top_ups",
        ["account_id"],
        unique=True,
        sqlite_where=condition,
        postgresql_where=condition,
    )


def upgrade() -> None:
    op.add_column("top_ups", sa.Column("checked_at", sa.Float(), nullable=True))
    op.add_column("payments", sa.Column("amount_subtotal", sa.BigInteger(), nullable=True))
    _in_flight("kind = 'auto' AND status IN ('open', 'pending')")


def downgrade() -> None:
    _in_flight("kind = 'auto' AND status = 'open'")
    op.drop_column("payments", "amount_subtotal")
    op.drop_column("top_ups", "checked_at")
