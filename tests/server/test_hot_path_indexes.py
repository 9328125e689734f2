"""The indexes on the rows every request writes: each one is a b-tree changed per request, so
the hot tables carry only those a query uses (migrations 0019 and 0020), and the queries still
find theirs."""

import shutil
import sqlite3
from datetime import date

import pytest
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from tests.server.helpers import auth

from reapi_server.models import StoredOutput, UsageRecord
from reapi_server.retention.repository import expired_by_account
from reapi_server.usage import report
from reapi_server.usage.calendar import DayRange, zone_named
from reapi_server.usage.filters import UsageFilter


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


def test_the_totals_find_the_requests_in_flight_through_the_held_holds(schema):
    """Pending rows are not in the roll-up (migration 0023): the totals read them from the held
    holds' partial index and the rows' key, never from an index of every row of the account."""
    days = DayRange(date(2027, 1, 1), date(2027, 1, 31), zone_named("UTC"))
    query = report._pending(UsageFilter("acct", days, key_id="k", model="m"))
    sql = str(query.compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}))
    plan = _plan(schema, sql)
    assert "ix_credit_holds_held_expires" in plan, plan
    assert "sqlite_autoindex_usage_records_1" in plan, plan
    assert "ix_usage_records_account_created" not in plan, plan
    assert "ix_credit_holds_account_id" not in plan, plan


#: The b-trees (tables and indexes) each of an image request's two transactions writes a page
#: of: at one connection each is a 4 KiB frame in the WAL, about 5 us of COMMIT (docs/benchmarks.md,
#: "Seventh round: what each transaction writes"). A new index on these tables, or a new row per
#: request, shows here first: it must be worth a frame in every transaction.
OPENING = [
    "accounts",  # the debit
    "api_keys",  # the key's spend counter
    "commit_markers",
    "credit_holds",
    "credit_ledger",
    "ix_credit_holds_account_id",
    "ix_credit_holds_held_expires",
    "ix_credit_ledger_account_id",
    "ix_usage_records_account_created",
    "sqlite_autoindex_credit_holds_1",
    "sqlite_autoindex_usage_records_1",
    "usage_records",  # the pending usage row (not in the roll-up: migration 0023)
]
CLOSING = [
    "accounts",  # the refund of the unspent rest (and `reserved`)
    "commit_markers",
    "credit_holds",
    "credit_ledger",
    "ix_credit_holds_held_expires",  # the hold leaves it
    "ix_credit_ledger_account_id",
    "ix_stored_outputs_account_created",
    "ix_stored_outputs_task_id",
    "sqlite_autoindex_stored_outputs_1",
    "stored_outputs",
    "usage_records",  # the usage row finished
    "usage_rollups",  # and counted
]


def _written_trees(database: str) -> list[str]:
    """The b-tree of each page in the WAL (restarted before the transaction)."""
    with open(f"{database}-wal", "rb") as wal:
        data = wal.read()
    page, salt, offset, pages = int.from_bytes(data[8:12], "big"), data[16:24], 32, []
    while offset + 24 + page <= len(data) and data[offset + 8 : offset + 16] == salt:
        pages.append(int.from_bytes(data[offset : offset + 4], "big"))
        offset += 24 + page
    connection = sqlite3.connect(database)
    try:
        trees = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    finally:
        connection.close()
    return sorted(trees[number] for number in pages)


async def test_an_image_request_writes_a_page_of_these_trees_and_no_more(gateway, monkeypatch):
    """One image request at one connection, each transaction alone in the WAL."""
    _, key = await gateway.account(credits=1000)
    group = gateway.rt.db.group
    database = group._wal.database

    async def generate() -> None:
        response = await gateway.client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "p"},
            headers=auth(key),
        )
        assert response.status_code == 200, response.text

    for _ in range(3):  # the first requests create the roll-up's group and the marker's row
        await generate()
    written: list[list[str]] = []
    transaction = group._sqlite_transaction

    async def traced(connection, ops, seq):
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        results = await transaction(connection, ops, seq)
        written.append(_written_trees(database))
        return results

    monkeypatch.setattr(group, "_sqlite_transaction", traced)
    await generate()
    assert written == [OPENING, CLOSING]
