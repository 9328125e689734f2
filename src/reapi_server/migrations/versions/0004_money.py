"""credit bounds in the schema; commit markers; idempotency records' liveness

Revision ID: 0004_money
Revises: 0003
Create Date: 2026-12-02 09:00:00.000000

Credit amounts are bounded by `models.MAX_CREDITS` (10^15): an account's balance and held credit
together, every hold, every ledger row. Without a bound a grant over 2^63 failed in the driver,
and SQLite stored a balance pushed past 2^63 as a float, which later charges did not reduce.

PostgreSQL gets CHECK constraints. SQLite cannot add one to an existing table without copying
it, and copying `accounts` means dropping it, which (foreign keys on, as the gateway runs)
cascades into every table that references it: there, triggers refuse the same rows, with the
constraint's name in the message.

`commit_markers`: one row per writer process, updated by every group-commit transaction, so
that a COMMIT whose outcome is unknown can be told apart from one that did not land.

`idempotency_records.alive_until`: until when an in-progress record's request counts as running
(its process pushes it back while it runs); the sweeper dropped such a record once older than
`image_hold_seconds`, even while its request still ran. Existing rows get `created_at` plus the
default window (900 s): what the sweeper went by before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_money"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out: a migration must not change with the code (models.MAX_CREDITS).
_MAX = 10**15

#: (table, constraint name, condition every row meets ({r}: where the row's columns are),
#: columns whose change re-checks it)
_CHECKS = [
    (
        "accounts",
        "ck_accounts_credits_within_bound",
        f"{{r}}balance + {{r}}reserved <= {_MAX}",
        "balance, reserved",
    ),
    (
        "credit_ledger",
        "ck_credit_ledger_amounts_within_bound",
        f"{{r}}amount BETWEEN -{_MAX} AND {_MAX}"
        f" AND {{r}}reserved_delta BETWEEN -{_MAX} AND {_MAX}",
        "amount, reserved_delta",
    ),
    (
        "credit_holds",
        "ck_credit_holds_amounts_within_bound",
        f"{{r}}amount BETWEEN 0 AND {_MAX} AND {{r}}charged BETWEEN 0 AND {{r}}amount",
        "amount, charged",
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
    op.add_column("idempotency_records", sa.Column("alive_until", sa.Float(), nullable=True))
    # 900: the default `image_hold_seconds` when this migration was written.
    op.execute("UPDATE idempotency_records SET alive_until = created_at + 900")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.alter_column("alive_until", existing_type=sa.Float(), nullable=False)
    op.create_table(
        "commit_markers",
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_commit_markers")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, condition, columns in _CHECKS:
        if postgres:
            check = condition.format(r="")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check})")
        else:
            for statement in _sqlite_triggers(table, name, condition, columns):
                op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, _, _ in reversed(_CHECKS):
        if postgres:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        else:
            op.execute(f"DROP TRIGGER {name}_insert")
            op.execute(f"DROP TRIGGER {name}_update")
    op.drop_table("commit_markers")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("alive_until")
