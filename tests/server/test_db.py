"""The SQLite unit of work: inline calls, and a writer that waits for another process's lock
without stalling the event loop."""

import asyncio
import shutil
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from reapi_server.db import Database
from reapi_server.group_commit import Statement, Tx


async def test_writer_waits_for_a_foreign_lock_without_blocking_the_loop(tmp_path):
    path = tmp_path / "x.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v INTEGER)"))

    locked, release = threading.Event(), threading.Event()

    def other_process() -> None:  # another process holding the write lock for a while
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (1)")
        locked.set()
        release.wait(5)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    locked.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> float:
        started = time.perf_counter()
        async with db.write() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
        return time.perf_counter() - started

    tick_task = asyncio.create_task(ticker())
    write_task = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not write_task.done()
    release.set()
    waited = await write_task
    tick_task.cancel()
    thread.join()
    assert waited >= 0.3
    assert ticks >= 20  # the loop kept running while the writer waited
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    await db.dispose()


@pytest.mark.parametrize("at_once", [True, False], ids=["at-once", "queued"])
async def test_a_group_commit_waits_for_a_foreign_lock_then_commits(
    tmp_path, migrated_template, at_once
):
    """A writer outside the writer turn (the `sqlite3` shell, say) holds SQLite's lock: the
    group commit's first `BEGIN IMMEDIATE` finds it busy, and the transaction waits with
    sleeps on the loop and commits once the lock is free."""
    path = tmp_path / "x.db"
    shutil.copy(migrated_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v INTEGER)"))
    insert = Statement(text("INSERT INTO t VALUES (2)"))

    async def op(tx: Tx) -> int:
        return await tx.execute(insert, {})

    foreign = sqlite3.connect(path, isolation_level=None)
    foreign.execute("BEGIN IMMEDIATE")
    foreign.execute("INSERT INTO t VALUES (1)")
    task = asyncio.create_task(db.grouped(op, account=None, at_once=at_once))
    await asyncio.sleep(0.2)
    assert not task.done()
    foreign.execute("COMMIT")
    foreign.close()
    assert await asyncio.wait_for(task, 5) == 1
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    await db.dispose()


async def test_sqlite_calls_run_on_the_event_loop_thread(tmp_path):
    """The inline connection relies on aiosqlite internals: catch a version that changes them."""
    from reapi_server.sqlite_inline import connect_inline

    connection = await connect_inline(str(tmp_path / "y.db"))
    threads: list[int] = []
    connection._conn.set_trace_callback(lambda _: threads.append(threading.get_ident()))
    cursor = await connection.execute("SELECT 1")
    assert await cursor.fetchall() == [(1,)]
    await cursor.close()
    await connection.close()
    assert threads and set(threads) == {threading.get_ident()}


async def test_checkpoints_run_off_the_loop_and_empty_the_wal(tmp_path):
    path = tmp_path / "z.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v BLOB)"))
    for _ in range(20):
        async with db.write() as session:
            await session.execute(text("INSERT INTO t VALUES (randomblob(100000))"))
    wal = tmp_path / "z.db-wal"
    assert wal.stat().st_size > 1_000_000  # no inline autocheckpoint
    await db.checkpoint()
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 20
    other = sqlite3.connect(path)
    assert other.execute("SELECT count(*) FROM t").fetchone() == (20,)
    other.close()
    await db.dispose()


async def test_a_migration_may_rebuild_a_parent_table_without_cascading(tmp_path):
    """SQLite rebuilds a table to alter it (create a copy, drop the old one): with foreign keys
    enforced, that drop deletes every child row of an ON DELETE CASCADE. Migrations run with
    enforcement off (SQLite's own procedure), checked before the commit, and on again after."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE parent (id TEXT PRIMARY KEY, extra TEXT)"))
        await session.execute(
            text(
                "CREATE TABLE child (id TEXT PRIMARY KEY,"
                " parent_id TEXT REFERENCES parent(id) ON DELETE CASCADE)"
            )
        )
        await session.execute(text("INSERT INTO parent VALUES ('p', 'x')"))
        await session.execute(text("INSERT INTO child VALUES ('c', 'p')"))

    async with db.write(enforce_foreign_keys=False) as session:
        await session.execute(text("CREATE TABLE parent_new (id TEXT PRIMARY KEY)"))
        await session.execute(text("INSERT INTO parent_new SELECT id FROM parent"))
        await session.execute(text("DROP TABLE parent"))
        await session.execute(text("ALTER TABLE parent_new RENAME TO parent"))

    async with db.read() as session:
        assert (await session.execute(text("SELECT id FROM child"))).scalars().all() == ["c"]
    async with db.write() as session:  # enforced again
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        await session.execute(text("DELETE FROM parent"))
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM child"))).scalar() == 0

    async def orphan() -> None:
        async with db.write(enforce_foreign_keys=False) as session:
            await session.execute(text("INSERT INTO child VALUES ('o', 'nobody')"))

    try:
        await orphan()
    except Exception as error:
        assert "foreign key" in str(error)
    else:
        raise AssertionError("an orphan row was committed")
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM child"))).scalar() == 0
    await db.dispose()


def test_every_connection_overwrites_what_it_deletes(tmp_path):
    """`secure_delete` on every connection: a deleted row's bytes are zeroed in its page (and a
    freed page is zeroed) instead of staying in the file until reused. Many builds (Debian's)
    have it on by default, others (python.org's) do not: the gateway does not rely on the
    build."""
    from reapi_server.db import _configure

    connection = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    connection.execute("PRAGMA secure_delete=0")  # as a build without it starts
    _configure(connection, writer=True)
    assert connection.execute("PRAGMA secure_delete").fetchone() == (1,)
    connection.close()


async def test_a_deleted_row_is_not_left_in_the_database_file(tmp_path):
    path = tmp_path / "d.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    marker = "deleted-person-7f3a9c@example.com"
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v TEXT)"))
        await session.execute(text("INSERT INTO t VALUES (:v)"), {"v": marker})
        await session.execute(text("INSERT INTO t VALUES ('kept')"))
    await db.checkpoint()
    async with db.write() as session:
        await session.execute(text("DELETE FROM t WHERE v = :v"), {"v": marker})
    await db.checkpoint()
    await db.dispose()
    assert marker.encode() not in path.read_bytes()
