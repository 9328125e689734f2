"""usage_rollups counts finished rows only: a request's opening transaction no longer writes it

Revision ID: 0023_rollup_finished_rows
Revises: 0022_session_step_up
Create Date: 2026-12-06 20:00:00.000000

A request's pending usage row was counted in the roll-up when its hold was made and moved to its
final group when it finished: the roll-up's page was one more b-tree in both of the request's
transactions (a 4 KiB WAL frame each at one connection, issue 15). Pending rows are now left
out; the usage page counts them from the rows themselves, found through the requests in flight
(`usage.report`: a pending row is always a held hold's request, written and closed with it).
A finish only adds the row to its final group. On SQLite the update's trigger is split in
two (`usage_rollup_update_add` is the new one), and each trigger says in its WHEN that it has
nothing to do with a pending row: then SQLite runs none of its statements.

The slot and key expressions are spelled out as in 0013_usage (a migration must not change
with the code).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0023_rollup_finished_rows"
down_revision: str | None = "0022_session_step_up"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = (
    "usage_rollup_insert",
    "usage_rollup_update",
    "usage_rollup_update_add",
    "usage_rollup_delete",
)

#: SQLite: what a row's old values take from their group, and its new values add to theirs.
_SQLITE_REMOVE = """UPDATE usage_rollups
        SET requests = requests - 1, credits = credits - OLD.credit_cost
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status;
        DELETE FROM usage_rollups
        WHERE account_id = OLD.account_id AND slot = CAST(OLD.created_at / 900 AS INTEGER)
            AND api_key_id = COALESCE(OLD.api_key_id, '') AND model = OLD.model
            AND status = OLD.status AND requests = 0;"""
_SQLITE_ADD = """INSERT INTO usage_rollups
        (account_id, slot, api_key_id, model, status, requests, credits)
        VALUES (NEW.account_id, CAST(NEW.created_at / 900 AS INTEGER),
                COALESCE(NEW.api_key_id, ''), NEW.model, NEW.status, 1, NEW.credit_cost)
        ON CONFLICT (account_id, slot, api_key_id, model, status) DO UPDATE
        SET requests = requests + 1, credits = credits + excluded.credits;"""
_SQLITE_CHANGED = """(OLD.account_id IS NOT NEW.account_id OR OLD.created_at IS NOT NEW.created_at
        OR OLD.api_key_id IS NOT NEW.api_key_id OR OLD.model IS NOT NEW.model
        OR OLD.status IS NOT NEW.status OR OLD.credit_cost IS NOT NEW.credit_cost)"""
_OLD_FINISHED, _NEW_FINISHED = "OLD.status <> 'pending'", "NEW.status <> 'pending'"


def _sqlite_triggers(finished_only: bool) -> list[str]:
    """The triggers of 0013_usage, or (`finished_only`) the same with pending rows left out:
    a trigger whose WHEN is false costs no statement at all, so the change of a row's values
    is two triggers, what the old values take and what the new ones add."""
    on = "ON usage_records FOR EACH ROW"
    if not finished_only:
        return [
            f"CREATE TRIGGER usage_rollup_insert AFTER INSERT {on} BEGIN {_SQLITE_ADD} END",
            f"CREATE TRIGGER usage_rollup_update AFTER UPDATE {on} WHEN {_SQLITE_CHANGED}"
            f" BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
            f"CREATE TRIGGER usage_rollup_delete AFTER DELETE {on} BEGIN {_SQLITE_REMOVE} END",
        ]
    return [
        f"CREATE TRIGGER usage_rollup_insert AFTER INSERT {on} WHEN {_NEW_FINISHED}"
        f" BEGIN {_SQLITE_ADD} END",
        f"CREATE TRIGGER usage_rollup_update AFTER UPDATE {on}"
        f" WHEN {_OLD_FINISHED} AND {_SQLITE_CHANGED} BEGIN {_SQLITE_REMOVE} END",
        f"CREATE TRIGGER usage_rollup_update_add AFTER UPDATE {on}"
        f" WHEN {_NEW_FINISHED} AND {_SQLITE_CHANGED} BEGIN {_SQLITE_ADD} END",
        f"CREATE TRIGGER usage_rollup_delete AFTER DELETE {on} WHEN {_OLD_FINISHED}"
        f" BEGIN {_SQLITE_REMOVE} END",
    ]


def _postgres_function(finished_only: bool) -> str:
    """0013_usage's function, or (`finished_only`) the same with pending rows left out."""
    old = f" AND {_OLD_FINISHED}" if finished_only else ""
    new = f" AND {_NEW_FINISHED}" if finished_only else ""
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


def _postgres_triggers(finished_only: bool) -> list[str]:
    """The insert's and the deletion's triggers, which (`finished_only`) skip pending rows
    without calling the function; the update's stays (a row may move either way)."""
    on, call = "ON usage_records FOR EACH ROW", "EXECUTE FUNCTION usage_rollup_apply()"
    insert = f"WHEN ({_NEW_FINISHED}) " if finished_only else ""
    delete = f"WHEN ({_OLD_FINISHED}) " if finished_only else ""
    return [
        "DROP TRIGGER usage_rollup_insert ON usage_records",
        "DROP TRIGGER usage_rollup_delete ON usage_records",
        f"CREATE TRIGGER usage_rollup_insert AFTER INSERT {on} {insert}{call}",
        f"CREATE TRIGGER usage_rollup_delete AFTER DELETE {on} {delete}{call}",
    ]


def _replace_triggers(finished_only: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgres_function(finished_only))
        for statement in _postgres_triggers(finished_only):
            op.execute(statement)
        return
    for trigger in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in _sqlite_triggers(finished_only):
        op.execute(statement)


def upgrade() -> None:
    _replace_triggers(finished_only=True)
    op.execute("DELETE FROM usage_rollups WHERE status = 'pending'")


def downgrade() -> None:
    _replace_triggers(finished_only=False)
    op.execute(_PENDING_GROUPS[op.get_bind().dialect.name])
