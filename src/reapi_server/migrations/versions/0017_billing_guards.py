"""billing guards: invoice numbers, what a waiting Stripe event waits for, events given up

Revision ID: 0017_billing_guards
Revises: 0016_promo
Create Date: 2026-12-21 09:00:00.000000

- `payments.invoice_number`: the invoice's number, kept with its id for the seven years a
  payment record outlives its account. The hosted invoice page, its PDF and the receipt page
  show the buyer's name, email and card to whoever has the link: a detached payment keeps none
  of them, so they are cleared here on rows detached already (the retention job does it too).
- `stripe_events.waiting_for`: the PaymentIntent, charge or top-up an event waits for
  (indexed): applying a purchase wakes only the events waiting for it.
- `stripe_events.given_up_at`: the retry loop stopped trying the event (it stayed unapplied
  too long); an operator can still apply it by hand.

Columns are only added (nullable): no table is rebuilt on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_billing_guards"
down_revision: str | None = "0016_promo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("invoice_number", sa.String(length=255), nullable=True))
    op.add_column("stripe_events", sa.Column("waiting_for", sa.String(length=255), nullable=True))
    op.add_column("stripe_events", sa.Column("given_up_at", sa.Float(), nullable=True))
    op.create_index(op.f("ix_stripe_events_waiting_for"), "stripe_events", ["waiting_for"])
    op.execute(
        "UPDATE payments SET invoice_url = NULL, invoice_pdf_url = NULL, receipt_url = NULL"
        " WHERE detached_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stripe_events_waiting_for"), table_name="stripe_events")
    op.drop_column("stripe_events", "given_up_at")  # in place (SQLite 3.35+): no rebuild
    op.drop_column("stripe_events", "waiting_for")
    op.drop_column("payments", "invoice_number")
