"""A database that fails makes the gateway unready, and its requests answer
`503 database_unavailable` (OpenAI's error shape, with Retry-After) instead of 500 — and both
recover with the database. Real failures: SQLite on a full disk (a small tmpfs, filled up:
SQLITE_FULL, as on a production disk) and a PostgreSQL server that is stopped."""

import asyncio
import time

import pytest
from tests.server.disks import fill, free, small_filesystem
from tests.server.helpers import auth
from tests.server.postgres import PostgresServer, pg_bin


async def _generate(gateway, key):
    return await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )


def _assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "database_unavailable" and error["type"] == "server_error"
    assert "database" in error["message"]
    assert int(answer.headers["retry-after"]) >= 1


async def _until_ready(gateway, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while (await gateway.client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "never ready again"
        await asyncio.sleep(0.1)


async def test_sqlite_on_a_full_disk(make_gateway, tmp_path):
    with small_filesystem(tmp_path / "db-disk", size="8m") as disk:
        gateway = await make_gateway(
            database_url=f"sqlite+aiosqlite:///{disk}/reapi.db",
            database_error_unready_seconds=0.5,
        )
        _, key = await gateway.account()
        assert (await _generate(gateway, key)).status_code == 200
        assert (await gateway.client.get("/readyz")).status_code == 200
        fill(disk)
        _assert_unavailable(await _generate(gateway, key))
        _assert_unavailable(await _generate(gateway, key))
        ready = await gateway.client.get("/readyz")
        assert ready.status_code == 503 and b"database" in ready.content
        free(disk)
        await _until_ready(gateway)
        assert (await _generate(gateway, key)).status_code == 200


@pytest.mark.postgres
async def test_postgresql_stopped(make_gateway):
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries")
    server = PostgresServer(bindir)  # its own: the session's server stays up for the others
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(server.execute, "CREATE DATABASE reapi")
        gateway = await make_gateway(
            database_url=server.url("reapi"), database_error_unready_seconds=0.5
        )
        _, key = await gateway.account()
        assert (await _generate(gateway, key)).status_code == 200
        await asyncio.to_thread(server.halt)
        _assert_unavailable(await _generate(gateway, key))
        _assert_unavailable(await gateway.client.get("/v1/credits", headers=auth(key)))
        assert (await gateway.client.get("/readyz")).status_code == 503
        await asyncio.to_thread(server.resume)
        await _until_ready(gateway)
        assert (await _generate(gateway, key)).status_code == 200
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.postgres
async def test_a_restart_while_idle_costs_no_request(make_gateway):
    """The group committer keeps its connection between transactions (no ping before each):
    after PostgreSQL restarted while the gateway was idle, that connection is dead, and the
    first transaction on it fails before any COMMIT. It runs again on a new connection: the
    request that met the dead connection succeeds."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries")
    server = PostgresServer(bindir)
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(server.execute, "CREATE DATABASE reapi")
        gateway = await make_gateway(database_url=server.url("reapi"))
        _, key = await gateway.account()
        assert (await _generate(gateway, key)).status_code == 200
        await asyncio.to_thread(server.halt)
        await asyncio.to_thread(server.resume)
        answer = await _generate(gateway, key)
        assert answer.status_code == 200, answer.text
        assert (await _generate(gateway, key)).status_code == 200
    finally:
        await asyncio.to_thread(server.stop)


def test_only_an_unavailable_database_is_a_503():
    """Conflicts and bugs stay what they are (409s, 500s): only errors of a database that cannot
    work right now count."""
    import sqlite3

    from sqlalchemy import exc

    from reapi_server.db_errors import is_unavailable

    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (x PRIMARY KEY)")
    connection.execute("INSERT INTO t VALUES (1)")
    errors = {}
    statements = {"duplicate": "INSERT INTO t VALUES (1)", "typo": "SELECT * FROM nope"}
    for name, sql in statements.items():
        try:
            connection.execute(sql)
        except sqlite3.Error as error:
            errors[name] = error
    assert not is_unavailable(exc.IntegrityError("INSERT", {}, errors["duplicate"]))
    assert not is_unavailable(exc.OperationalError("SELECT", {}, errors["typo"]))
    assert not is_unavailable(ValueError("a bug"))
    assert is_unavailable(exc.OperationalError(None, None, ConnectionRefusedError(111, "refused")))
    assert is_unavailable(exc.TimeoutError("QueuePool limit reached"))


def test_a_writer_waits_for_every_kind_of_busy(tmp_path):
    """Python gives SQLite's extended result codes: "database is locked" may come as
    SQLITE_BUSY_SNAPSHOT (517) or SQLITE_BUSY_RECOVERY (261), not only 5. A writer whose lock
    (or first connection's set-up, while another connection turns on WAL) meets one of them
    waits its turn like for plain SQLITE_BUSY; a real error is not waited for."""
    import sqlite3

    from sqlalchemy import exc

    from reapi_server.db_errors import is_sqlite_busy

    path = tmp_path / "busy.db"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("CREATE TABLE t (x)")
    second = sqlite3.connect(path, isolation_level=None)
    second.execute("BEGIN")
    second.execute("SELECT * FROM t").fetchall()
    first.execute("INSERT INTO t VALUES (1)")
    try:
        second.execute("INSERT INTO t VALUES (2)")  # its snapshot is stale: BUSY_SNAPSHOT
    except sqlite3.OperationalError as error:
        snapshot = error
    assert snapshot.sqlite_errorcode != sqlite3.SQLITE_BUSY  # an extended code
    assert is_sqlite_busy(exc.OperationalError("INSERT", {}, snapshot))
    assert is_sqlite_busy(snapshot)  # the driver's own, as group commit sees it
    try:
        first.execute("SELECT * FROM nope")
    except sqlite3.OperationalError as error:
        typo = error
    assert not is_sqlite_busy(exc.OperationalError("SELECT", {}, typo))
