"""The SQLite WAL stays bounded while writes and reads never stop (issue 15: it grew ~27 MiB/s
under load and shrank only when the last connection closed)."""

import asyncio
import shutil
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from reapi_server.db import Database
from reapi_server.group_commit import Statement, Tx

MIB = 1024 * 1024
_INSERT = Statement(text("INSERT INTO blobs VALUES (randomblob(200000))"))


def _readers(path: str, stop: threading.Event) -> list[threading.Thread]:
    """Two connections (another process's readers) whose read transactions overlap: at every
    moment one of them holds a snapshot."""

    def read(offset: float) -> None:
        connection = sqlite3.connect(path, isolation_level=None, timeout=5)
        time.sleep(offset)
        while not stop.is_set():
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM blobs").fetchone()
            time.sleep(0.004)
            connection.execute("COMMIT")
        connection.close()

    return [threading.Thread(target=read, args=(offset,)) for offset in (0.0, 0.002)]


@pytest.mark.parametrize("periodic", [True, False], ids=["with-periodic", "writer-alone"])
async def test_checkpoints_complete_under_writes_and_concurrent_reads(
    tmp_path, migrated_template, periodic
):
    """With the gateway's periodic checkpoint (here every 50 ms), and without it: the writer
    keeps the bound by itself."""
    path = tmp_path / "reapi.db"
    shutil.copy(migrated_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE blobs (v BLOB)"))
    wal = tmp_path / "reapi.db-wal"
    stop = threading.Event()
    readers = _readers(str(path), stop)
    for reader in readers:
        reader.start()

    async def insert(tx: Tx) -> None:
        await tx.execute(_INSERT, {})

    async def checkpointer() -> None:  # what the gateway's background task does, only faster
        while True:
            await db.checkpoint()
            await asyncio.sleep(0.05)

    async def loop_reader() -> None:
        while True:
            async with db.read() as session:
                await session.execute(text("SELECT count(*) FROM blobs"))
            await asyncio.sleep(0.002)

    background = [asyncio.create_task(loop_reader())]
    if periodic:
        background.append(asyncio.create_task(checkpointer()))
    sizes = []
    try:
        try:
            for _ in range(300):  # 60 MB through the WAL
                await db.grouped(insert, account=None)
                sizes.append(wal.stat().st_size if wal.exists() else 0)
        finally:
            stop.set()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for reader in readers:
                reader.join()
        # The bound (16 MiB) holds, give or take the batch that crossed it; and checkpoints
        # completed again and again while the reads went on: the WAL started over each time.
        assert max(sizes) < 17 * MIB, f"the WAL reached {max(sizes) / MIB:.0f} MiB"
        wal_bound = db.group._wal
        assert wal_bound is not None and wal_bound.completed >= 2
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM blobs"))).scalar() == 300
    finally:
        await db.dispose()


async def _blobs_database(tmp_path, migrated_template) -> Database:
    path = tmp_path / "reapi.db"
    shutil.copy(migrated_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE blobs (v BLOB)"))
    return db


async def _insert(tx: Tx) -> None:
    await tx.execute(_INSERT, {})


async def test_opening_ops_alone_keep_the_bound(tmp_path, migrated_template):
    """Ops committed at once, none queued (the runner, which checkpoints, runs only for the
    queued ones): each asks the WAL after a commit of the committer's since it last asked, so
    the one that finds it past its bound is queued, and the runner checkpoints after it."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    wal_bound.limit = 2 * MIB
    sizes = []
    try:
        for _ in range(60):  # 12 MB through the WAL
            await db.grouped(_insert, account=None, at_once=True)
            await asyncio.sleep(0)  # the pass ends: the next one may go at once
            sizes.append(wal_bound.size())
        assert max(sizes) < 3 * MIB, f"the WAL reached {max(sizes) / MIB:.1f} MiB"
        assert wal_bound.completed >= 2
    finally:
        await db.dispose()


async def test_a_request_asks_the_wal_its_size_once(tmp_path, migrated_template, monkeypatch):
    """At one connection: a hold at once, then the settlement queued. The runner asks the WAL
    (a `stat`) after the settlement's commit; the next hold, with nothing committed since,
    takes that answer instead of asking again."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    stats = 0
    size = wal_bound.size

    def counted() -> int:
        nonlocal stats
        stats += 1
        return size()

    monkeypatch.setattr(wal_bound, "size", counted)

    async def nothing(tx: Tx) -> None:
        return None

    try:
        for _ in range(3):  # warm: the hold of the first request asks
            await db.grouped(nothing, account=None, at_once=True)
            await db.grouped(nothing, account=None)
            await asyncio.sleep(0)
        stats = 0
        for _ in range(10):
            await db.grouped(nothing, account=None, at_once=True)  # the hold
            await db.grouped(nothing, account=None)  # the settlement
            await asyncio.sleep(0)
        assert stats == 10
    finally:
        await db.dispose()
