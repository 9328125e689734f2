"""billing: top-ups, Stripe events, refunds, disputes, billing profiles; debt and holds

Revision ID: 0015_billing
Revises: 0014_webhooks
Create Date: 2026-12-20 09:00:00.000000

`credit_ledger.source_id` is unique: a billing movement names what caused it (`pi_...:purchase`,
`re_...`, `dp_...:taken`), so the same money never moves twice. `accounts.debt` is what a
chargeback took beyond the balance (the balance itself stays at 0 or above); `accounts.on_hold`
refuses every hold while a chargeback is open. `top_ups` allows one automatic top-up in flight
per account (a partial unique index).

Columns are only added (with server defaults where NOT NULL) and unique indexes made rather
than constraints: `accounts`, `credit_ledger` and `payments` are never rebuilt on SQLite, so
0004_money's triggers stay. The debt bounds are CHECK constraints on PostgreSQL and triggers on
SQLite, as 0004_money does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_billing"
down_revision: str | None = "0014_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out: a migration must not change with the code (models.MAX_CREDITS).
_MAX = 10**15

#: (table, constraint name, condition ({r}: where the row's columns are), columns re-checked)
_CHECKS = [
    ("accounts", "ck_accounts_debt_within_bound", f"{{r}}debt BETWEEN 0 AND {_MAX}", "debt"),
    (
        "credit_ledger",
        "ck_credit_ledger_debt_within_bound",
        f"{{r}}debt_delta BETWEEN -{_MAX} AND {_MAX}",
        "debt_delta",
    ),
]


def _sqlite_triggers(table: str, name: str, condition: str, columns: str) -> list[str]:
    when = f"WHEN NOT ({condition.format(r='NEW.')})"
    refuse = f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
    return [
        f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {table} {when} {refuse}",
        f"CREATE TRIGGER {name}_update BEFORE UPDATE OF {columns} ON {table} {when} {refuse}",
    ]


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("debt", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("accounts", sa.Column("on_hold", sa.String(length=40), nullable=True))
    op.add_column(
        "credit_ledger",
        sa.Column("debt_delta", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("credit_ledger", sa.Column("source_id", sa.String(length=255), nullable=True))
    op.create_index("uq_credit_ledger_source_id", "credit_ledger", ["source_id"], unique=True)
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, condition, columns in _CHECKS:
        if postgres:
            check = condition.format(r="")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check})")
        else:
            for statement in _sqlite_triggers(table, name, condition, columns):
                op.execute(statement)

    op.add_column("payments", sa.Column("top_up_id", sa.String(length=40), nullable=True))
    op.add_column(
        "payments",
        sa.Column("source", sa.String(length=16), nullable=False, server_default="checkout"),
    )
    op.add_column("payments", sa.Column("stripe_charge_id", sa.String(length=255), nullable=True))
    op.add_column("payments", sa.Column("invoice_pdf_url", sa.String(length=2048), nullable=True))
    op.add_column("payments", sa.Column("receipt_url", sa.String(length=2048), nullable=True))
    op.add_column(
        "payments",
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("payments", sa.Column("paid_at", sa.Float(), nullable=True))
    op.create_index("uq_payments_top_up_id", "payments", ["top_up_id"], unique=True)
    op.create_index(op.f("ix_payments_stripe_charge_id"), "payments", ["stripe_charge_id"])

    op.create_table(
        "top_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pack_id", sa.String(length=40), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("save_card", sa.Boolean(), nullable=False),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_top_ups_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_top_ups")),
        sa.UniqueConstraint(
            "stripe_checkout_session_id", name=op.f("uq_top_ups_stripe_checkout_session_id")
        ),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name=op.f("uq_top_ups_stripe_payment_intent_id")
        ),
    )
    op.create_index(op.f("ix_top_ups_account_id"), "top_ups", ["account_id"])
    in_flight = sa.text("kind = 'auto' AND status = 'open'")
    op.create_index(
        "uq_top_ups_one_auto_in_flight",
        "top_ups",
        ["account_id"],
        unique=True,
        sqlite_where=in_flight,
        postgresql_where=in_flight,
    )

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("credits_taken", sa.BigInteger(), nullable=False),
        sa.Column("credits_debt", sa.BigInteger(), nullable=False),
        sa.Column("credits_waived", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_refunds_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(op.f("ix_refunds_payment_id"), "refunds", ["payment_id"])

    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("credits_taken", sa.BigInteger(), nullable=False),
        sa.Column("credits_debt", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_disputes_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_disputes_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_payment_id"), "disputes", ["payment_id"])
    op.create_index(op.f("ix_disputes_account_id"), "disputes", ["account_id"])

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_created", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("handled_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_index("ix_stripe_events_due", "stripe_events", ["handled_at", "next_attempt_at"])
    op.create_index(op.f("ix_stripe_events_received_at"), "stripe_events", ["received_at"])

    op.create_table(
        "billing_profiles",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("card_label", sa.String(length=64), nullable=True),
        sa.Column("auto_enabled", sa.Boolean(), nullable=False),
        sa.Column("auto_threshold", sa.BigInteger(), nullable=False),
        sa.Column("auto_pack_id", sa.String(length=40), nullable=True),
        sa.Column("auto_monthly_cap", sa.BigInteger(), nullable=False),
        sa.Column("auto_paused_reason", sa.String(length=64), nullable=True),
        sa.Column("auto_paused_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_billing_profiles_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_billing_profiles")),
        sa.UniqueConstraint(
            "stripe_customer_id", name=op.f("uq_billing_profiles_stripe_customer_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("billing_profiles")
    op.drop_index(op.f("ix_stripe_events_received_at"), table_name="stripe_events")
    op.drop_index("ix_stripe_events_due", table_name="stripe_events")
    op.drop_table("stripe_events")
    op.drop_table("disputes")
    op.drop_table("refunds")
    op.drop_index("uq_top_ups_one_auto_in_flight", table_name="top_ups")
    op.drop_table("top_ups")
    op.drop_index(op.f("ix_payments_stripe_charge_id"), table_name="payments")
    op.drop_index("uq_payments_top_up_id", table_name="payments")
    for column in (
        "paid_at",
        "amount_refunded",
        "receipt_url",
        "invoice_pdf_url",
        "stripe_charge_id",
        "source",
        "top_up_id",
    ):
        op.drop_column("payments", column)  # in place (SQLite 3.35+): no rebuild
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, _, _ in reversed(_CHECKS):
        if postgres:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        else:
            op.execute(f"DROP TRIGGER {name}_insert")
            op.execute(f"DROP TRIGGER {name}_update")
    op.drop_index("uq_credit_ledger_source_id", table_name="credit_ledger")
    op.drop_column("credit_ledger", "source_id")
    op.drop_column("credit_ledger", "debt_delta")
    op.drop_column("accounts", "on_hold")
    op.drop_column("accounts", "debt")
