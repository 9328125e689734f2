"""usage_rollups counts finished rows only: a request's opening transaction no longer writes it

Revision ID: 0022_rollup_finished_rows
Revises: 0021_mail_by_person
Create Date: 2026-12-06 20:00:00.000000

A request's pending usage row was counted in the roll-up when its hold was made and moved to its
final group when it finished: the roll-up's page was one more b-tree in both of the request's
transactions (a 4 KiB WAL frame each at one connection, issue 15). Pending rows are now left
out; the usage page counts them from the rows themselves, found through the requests in flight
(`usage.report`: a pending row is always a held hold's request, written and closed with it).
The triggers keep their names; the finish only adds the row to its final group.

The slot and key expressions are spelled out as in 0013_usage (a migration must not change
with the code).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022_rollup_finished_rows"
down_revision: str | None = "0021_mail_by_person"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = ("usage_rollup_insert", "usage_rollup_update", "usage_rollup_delete")

#: SQLite: `{old}` / `{new}` are extra conditions on the old and the new row (empty in 0013).
_SQLITE_REMOVE = """UPDATE usage_rollups
        SET requests = requests - 1, credits = credits - OLD.credit_cost
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status{old};
        DELETE FROM usage_rollups
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status AND requests = 0{old};"""
_SQLITE_ADD = """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        SELECT NEW.account_id, CAST(NEW.created_at / 900 AS INTEGER),
                COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost
        WHERE true{new}
        ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
        SET requests = requests + 1, credits = credits + excluded.credits;"""
_SQLITE_CHANGED = """OLD.account_id IS NOT NEW.account_id OR OLD.created_at IS NOT NEW.created_at
        OR OLD.api_key_id IS NOT NEW.api_key_id OR OLD.model IS NOT NEW.model
        OR OLD.status IS NOT NEW.status OR OLD.credit_cost IS NOT NEW.credit_cost"""


def _sqlite(finished_only: bool) -> list[str]:
    old = " AND OLD.status <> 'pending'" if finished_only else ""
    new = " AND NEW.status <> 'pending'" if finished_only else ""
    remove, add = _SQLITE_REMOVE.format(old=old), _SQLITE_ADD.format(new=new)
    return [
        f"CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_records BEGIN {add} END",
        f"CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_records"
        f" WHEN {_SQLITE_CHANGED} BEGIN {remove} {add} END",
        f"CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_records BEGIN {remove} END",
    ]


def _postgres(finished_only: bool) -> str:
    old = " AND OLD.status <> 'pending'" if finished_only else ""
    new = " AND NEW.status <> 'pending'" if finished_only else ""
    return f"""CREATE OR REPLACE FUNCTION usage_rollup_apply() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE usage_rollups
            SET requests = requests - 1, credits = credits - OLD.credit_cost
            WHERE account_id = OLD.account_id AND slot = floor(OLD.created_at / 900)::bigint
                AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
                AND status = OLD.status{old};
            DELETE FROM usage_rollups
            WHERE account_id = OLD.account_id AND slot = floor(OLD.created_at / 900)::bigint
                AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
                AND status = OLD.status AND requests = 0{old};
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO usage_rollups
                (account_id, slot, api_key_id, model, status, requests, credits)
            SELECT NEW.account_id, floor(NEW.created_at / 900)::bigint,
                    COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost
            WHERE true{new}
            ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
            SET requests = usage_rollups.requests + 1,
                credits = usage_rollups.credits + excluded.credits;
        END IF;
        RETURN NULL;
    END $$"""  # noqa: S608  (constant text: no value comes from outside)


_PENDING_GROUPS = {
    "sqlite": """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        SELECT account_id, CAST(created_at / 900 AS INTEGER), COALESCE(api_key_id, ''), model,
            status, count(*), sum(credit_cost)
        FROM usage_records WHERE status = 'pending'
        GROUP BY account_id, CAST(created_at / 900 AS INTEGER), COALESCE(api_key_id, ''),
            model, status""",
    "postgresql": """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        SELECT account_id, floor(created_at / 900)::bigint, COALESCE(api_key_id, ''), model,
            status, count(*), sum(credit_cost)
        FROM usage_records WHERE status = 'pending'
        GROUP BY account_id, floor(created_at / 900)::bigint, COALESCE(api_key_id, ''),
            model, status""",
}


def _replace_triggers(finished_only: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgres(finished_only))  # the triggers call it by name
        return
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}")
    for statement in _sqlite(finished_only):
        op.execute(statement)


def upgrade() -> None:
    _replace_triggers(finished_only=True)
    op.execute("DELETE FROM usage_rollups WHERE status = 'pending'")


def downgrade() -> None:
    _replace_triggers(finished_only=False)
    op.execute(_PENDING_GROUPS[op.get_bind().dialect.name])
