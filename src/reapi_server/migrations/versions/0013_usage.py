"""usage dashboard: users.time_zone; usage_rollups kept by triggers; stored outputs listed per
account, newest first

Revision ID: 0013_usage
Revises: 0012_data
Create Date: 2027-01-10 09:00:00.000000

- `users.time_zone` (an IANA name, "UTC" for everyone so far): the zone the dashboard shows
  times in and groups usage by day in.
- `usage_rollups`: the usage rows counted per account, 15-minute slot, key, model and status.
  The usage page's totals for an account with 100,000 rows in its 30 days read a few thousand
  groups instead of every row (bench/usage_page.py; docs/benchmarks.md). Triggers on
  `usage_records` keep it in the statement that inserts, changes or deletes a row, whichever
  code does it (requests, the poller, the sweeper, retention, account deletion), so it never
  disagrees with the rows; it is filled from the rows that exist here.
- The outputs page lists an account's outputs newest first, a page at a time: an index on
  (account_id, created_at) answers that without a sort.

The slot and key expressions are spelled out in each statement (a migration must not change with
the code): slot = floor(created_at / 900), key = coalesce(api_key_id, '').
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_usage"
down_revision: str | None = "0012_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# slot = floor(created_at / 900); key = coalesce(api_key_id, ''); a group at 0 is deleted.
_SQLITE = [
    """CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_records
    BEGIN
        INSERT INTO usage_rollups (account_id, slot, api_key_id, model, status, requests, credits)
        VALUES (NEW.account_id, CAST(NEW.created_at / 900 AS INTEGER),
                COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost)
        ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
        SET requests = requests + 1, credits = credits + excluded.credits;
    END""",
    """CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_records
    WHEN OLD.account_id IS NOT NEW.account_id OR OLD.created_at IS NOT NEW.created_at
        OR OLD.api_key_id IS NOT NEW.api_key_id OR OLD.model IS NOT NEW.model
        OR OLD.status IS NOT NEW.status OR OLD.credit_cost IS NOT NEW.credit_cost
    BEGIN
        UPDATE usage_rollups SET requests = requests - 1, credits = credits - OLD.credit_cost
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status;
        DELETE FROM usage_rollups
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status AND requests = 0;
        INSERT INTO usage_rollups (account_id, slot, api_key_id, model, status, requests, credits)
        VALUES (NEW.account_id, CAST(NEW.created_at / 900 AS INTEGER),
                COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost)
        ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
        SET requests = requests + 1, credits = credits + excluded.credits;
    END""",
    """CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_records
    BEGIN
        UPDATE usage_rollups SET requests = requests - 1, credits = credits - OLD.credit_cost
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status;
        DELETE FROM usage_rollups
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status AND requests = 0;
    END""",
]

_POSTGRES = [
    """CREATE FUNCTION usage_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE usage_rollups
            SET requests = requests - 1, credits = credits - OLD.credit_cost
            WHERE account_id = OLD.account_id AND slot = floor(OLD.created_at / 900)::bigint
                AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
                AND status = OLD.status;
            DELETE FROM usage_rollups
            WHERE account_id = OLD.account_id AND slot = floor(OLD.created_at / 900)::bigint
                AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
                AND status = OLD.status AND requests = 0;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO usage_rollups
                (account_id, slot, api_key_id, model, status, requests, credits)
            VALUES (NEW.account_id, floor(NEW.created_at / 900)::bigint,
                    COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost)
            ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
            SET requests = usage_rollups.requests + 1,
                credits = usage_rollups.credits + excluded.credits;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_rollup_apply()""",
    """CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_records FOR EACH ROW
    WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id
        OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.api_key_id IS DISTINCT FROM NEW.api_key_id OR OLD.model IS DISTINCT FROM NEW.model
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.credit_cost IS DISTINCT FROM NEW.credit_cost)
    EXECUTE FUNCTION usage_rollup_apply()""",
    """CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_rollup_apply()""",
]

_FILL = {
    "sqlite": """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        SELECT account_id, CAST(created_at / 900 AS INTEGER), COALESCE(api_key_id, ''), model,
            status, count(*), sum(credit_cost)
        FROM usage_records
        GROUP BY account_id, CAST(created_at / 900 AS INTEGER), COALESCE(api_key_id, ''),
            model, status""",
    "postgresql": """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        SELECT account_id, floor(created_at / 900)::bigint, COALESCE(api_key_id, ''), model,
            status, count(*), sum(credit_cost)
        FROM usage_records
        GROUP BY account_id, floor(created_at / 900)::bigint, COALESCE(api_key_id, ''),
            model, status""",
}

_TRIGGERS = ("usage_rollup_insert", "usage_rollup_update", "usage_rollup_delete")


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite.
    op.add_column(
        "users",
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    )
    op.create_index(
        "ix_stored_outputs_account_created", "stored_outputs", ["account_id", "created_at"]
    )
    op.create_table(
        "usage_rollups",
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("slot", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "slot", "api_key_id", "model", "status"),
        sqlite_with_rowid=False,
    )
    dialect = op.get_bind().dialect.name
    op.execute(_FILL[dialect])
    for statement in _POSTGRES if dialect == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for trigger in _TRIGGERS:
        op.execute(
            f"DROP TRIGGER {trigger} ON usage_records" if postgres else f"DROP TRIGGER {trigger}"
        )
    if postgres:
        op.execute("DROP FUNCTION usage_rollup_apply()")
    op.drop_table("usage_rollups")
    op.drop_index("ix_stored_outputs_account_created", table_name="stored_outputs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("time_zone")
