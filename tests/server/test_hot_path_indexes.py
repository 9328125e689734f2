"""The indexes on the rows every request writes: each one is a b-tree changed per request, so
the hot tables carry only those a query uses (migrations 0019 and 0020), and the queries still
find theirs."""

import shutil
import sqlite3

import pytest
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from reapi_server.models import StoredOutput, UsageRecord
from reapi_server.retention.repository import expired_by_account


@pytest.fixture
def schema(migrated_template, tmp_path) -> sqlite3.Connection:
    path = tmp_path / "reapi.db"
    shutil.copy(migrated_template, path)  # the session's template stays as it is
    connection = sqlite3.connect(path)
    yield connection
    connection.close()


def _plan(connection: sqlite3.Connection, sql: str) -> str:
    return " ".join(str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}"))


def _indexes(connection: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in connection.execute(f"PRAGMA index_list({table})")}


def test_the_hot_tables_carry_no_index_another_one_covers(schema):
    assert "ix_stored_outputs_account_id" not in _indexes(schema, "stored_outputs")
    assert "ix_credit_holds_status_expires" not in _indexes(schema, "credit_holds")


def test_the_sweeper_reads_the_held_holds_only(schema):
    plan = _plan(
        schema,
        "SELECT id FROM credit_holds WHERE status = 'held' AND expires_at IS NOT NULL"
        " AND expires_at < 1 LIMIT 200",
    )
    assert "ix_credit_holds_held_expires" in plan, plan
    schema.execute(
        "INSERT INTO accounts (id, balance, reserved, created_at, debt) VALUES ('a', 0, 0, 0, 0)"
    )
    for hold, status in (("h1", "held"), ("h2", "settled")):
        schema.execute(
            "INSERT INTO credit_holds (id, account_id, amount, charged, status, purpose,"
            f" request_id, expires_at, created_at) VALUES ('{hold}', 'a', 1, 0, '{status}',"
            " 'image', 'r', 5, 0)"
        )
    in_index = "SELECT id FROM credit_holds INDEXED BY ix_credit_holds_held_expires"
    assert schema.execute(f"{in_index} WHERE status = 'held'").fetchall() == [("h1",)]


def test_a_source_still_moves_credit_once(schema):
    plan = _plan(schema, "SELECT id FROM credit_ledger WHERE source_id = 'pi_1:purchase'")
    assert "uq_credit_ledger_source_id" in plan, plan
    schema.execute(
        "INSERT INTO accounts (id, balance, reserved, created_at, debt) VALUES ('a', 0, 0, 0, 0)"
    )
    row = (
        "INSERT INTO credit_ledger (account_id, kind, amount, reserved_delta, created_at,"
        " debt_delta, source_id) VALUES ('a', 'grant', 1, 0, 0, 0, {})"
    )
    schema.execute(row.format("NULL"))
    schema.execute(row.format("NULL"))  # rows without a source never conflict
    schema.execute(row.format("'pi_1:purchase'"))
    with pytest.raises(sqlite3.IntegrityError):
        schema.execute(row.format("'pi_1:purchase'"))


def test_usage_rows_and_outputs_have_no_index_on_age_alone(schema):
    assert "ix_usage_records_created_at" not in _indexes(schema, "usage_records")
    assert "ix_stored_outputs_created_at" not in _indexes(schema, "stored_outputs")


@pytest.mark.parametrize(
    ("model", "index"),
    [
        (UsageRecord, "ix_usage_records_account_created"),
        (StoredOutput, "ix_stored_outputs_account_created"),
    ],
)
def test_retention_finds_old_rows_in_each_accounts_index(schema, model, index):
    batch = expired_by_account("sqlite", model, 1000.0, 500)
    sql = str(batch.compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}))
    plan = _plan(schema, sql)
    assert f"SEARCH {model.__tablename__} USING" in plan and index in plan, plan
    assert f"SCAN {model.__tablename__}" not in plan, plan
