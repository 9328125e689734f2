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
        # Past it only after a RESTART the readers kept from finishing (two overlapping readers
        # taking turns on one read slot can), and then only until the next try, 50 ms later:
        # at most ~25 of these 200 kB commits, then back within the bound.
        wal_bound = db.group._wal
        assert wal_bound is not None and wal_bound.completed >= 2
        over = [i for i, size in enumerate(sizes) if size >= 17 * MIB]
        assert not over or wal_bound.missed, f"the WAL reached {max(sizes) / MIB:.0f} MiB"
        assert max(sizes) < 17 * MIB + 5 * MIB * wal_bound.missed, sizes
        assert sizes[-1] < 17 * MIB
        for start, end in _stretches(over):
            assert end - start < 30, (start, end)
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM blobs"))).scalar() == 300
    finally:
        await db.dispose()


def _stretches(indexes: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive indexes, as (first, last)."""
    runs: list[tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


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


class _Checkpoints:
    """Every `wal_checkpoint` the WAL's bound runs (its own connections), recorded: its mode,
    whether the committer's turn was held meanwhile (the writer held back), and SQLite's answer
    (busy, frames in the WAL, frames copied). A PASSIVE one waits for `release` once `hold`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls: list[tuple[str, bool, tuple[int, int, int]]] = []
        self.hold = False
        self.copying = threading.Event()
        self.release = threading.Event()

    def connect(self, *args, **kwargs) -> sqlite3.Connection:
        recorder = self

        class Recorded(sqlite3.Connection):
            def execute(self, sql, *params):  # type: ignore[override]
                cursor = super().execute(sql, *params)
                if "wal_checkpoint" not in sql:
                    return cursor
                mode = sql[sql.index("(") + 1 : sql.index(")")]
                if mode == "PASSIVE" and recorder.hold:
                    recorder.copying.set()
                    recorder.release.wait(5)
                turn = recorder.db.group._turn.locked()
                row = cursor.fetchone()
                recorder.calls.append((mode, turn, row))
                return _Row(row)

        return sqlite3.connect(*args, factory=Recorded, **kwargs)

    def modes(self) -> list[str]:
        return [mode for mode, _, _ in self.calls]


class _Row:
    def __init__(self, row: tuple[int, int, int]) -> None:
        self.row = row

    def fetchone(self) -> tuple[int, int, int]:
        return self.row


def _recorded(db: Database, monkeypatch) -> _Checkpoints:
    from types import SimpleNamespace

    from reapi_server import wal_bound

    checkpoints = _Checkpoints(db)
    module = SimpleNamespace(
        connect=checkpoints.connect, Error=sqlite3.Error, Connection=sqlite3.Connection
    )
    monkeypatch.setattr(wal_bound, "sqlite3", module)
    return checkpoints


_SMALL = Statement(text("INSERT INTO blobs VALUES (randomblob(20000))"))  # ~5 frames
_TINY = Statement(text("INSERT INTO blobs VALUES (randomblob(10))"))  # 2 frames


async def _small(tx: Tx) -> None:
    await tx.execute(_SMALL, {})


async def _tiny(tx: Tx) -> None:
    await tx.execute(_TINY, {})


async def _settle(wal_bound) -> None:
    """Until no copy is under way (it runs on a thread)."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        if getattr(wal_bound, "_copy", None) is None:
            return


async def test_the_writer_is_held_back_only_for_what_no_copy_took(
    tmp_path, migrated_template, monkeypatch
):
    """One request at a time, as at one connection: most of the WAL is copied while the turn
    is free (PASSIVE, beside the commits), and the RESTART at the bound, which holds the writer,
    copies only what came since (before: all of it, ~60 ms at a 16 MiB bound, the whole p99)."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    wal_bound.limit = 2 * MIB
    checkpoints = _recorded(db, monkeypatch)
    try:
        for _ in range(400):  # ~8 MB through the WAL: four times its bound
            await db.grouped(_small, account=None, at_once=True)
            await asyncio.sleep(0.001)
        assert wal_bound.completed >= 2
        copied_held: list[int] = []  # frames copied by each checkpoint that held the writer
        copied_free = 0
        last = (0, 0)  # (frames in the WAL, frames copied) after the previous checkpoint
        for _, turn, (busy, held, copied) in checkpoints.calls:
            before = last[1] if held >= last[0] else 0  # 0: the WAL started over since
            if not busy:
                if turn:
                    copied_held.append(copied - before)
                else:
                    copied_free += copied - before
                last = (held, copied)
        bound_frames = wal_bound.limit // 4120
        assert max(copied_held) < bound_frames / 3, (copied_held, bound_frames)
        assert sum(copied_held) < copied_free, (copied_held, copied_free)
    finally:
        await db.dispose()


async def test_a_copy_starts_only_once_the_wal_holds_enough_new_frames(
    tmp_path, migrated_template, monkeypatch
):
    """After a RESTART the WAL file keeps its size (the bound), and the WAL starts over inside
    it: a few small commits then must start no copy (a trigger on the file's size copied back
    to back after each of them, doubling the CPU per request); an eighth of the bound does."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    wal_bound.limit = 2 * MIB
    # The file cut back to that bound after a restart, as the gateway's to its own.
    db.group._own_connection().execute(f"PRAGMA journal_size_limit={2 * MIB}")
    checkpoints = _recorded(db, monkeypatch)
    try:
        for _ in range(400):  # ~2 of them take ~200 ops
            await db.grouped(_small, account=None, at_once=True)
            await asyncio.sleep(0.001)
            if wal_bound.completed >= 2:
                break
        await _settle(wal_bound)
        assert wal_bound.size() >= wal_bound.limit  # the file kept its size
        checkpoints.calls.clear()
        for _ in range(10):  # ~20 frames: a tenth of what a copy waits for
            await db.grouped(_tiny, account=None, at_once=True)
            await asyncio.sleep(0.005)
        await _settle(wal_bound)
        assert checkpoints.modes() == []
        for _ in range(20):  # ~100 frames, past an eighth of the bound (~64)
            await db.grouped(_small, account=None, at_once=True)
            await asyncio.sleep(0.005)
        await _settle(wal_bound)
        modes = checkpoints.modes()
        assert modes and set(modes) == {"PASSIVE"}
        # Each found an eighth of the bound in the WAL at least (a copy that caught up lets the
        # next commit start the WAL over: then a second one may come after another eighth).
        assert all(held * 4120 >= wal_bound.limit // 8 for _, _, (_, held, _) in checkpoints.calls)
    finally:
        await db.dispose()


async def test_a_copy_holds_no_commit_back(tmp_path, migrated_template, monkeypatch):
    """While a copy runs (held here until the commits are done), ops commit at once and
    queued, and the RESTART at the bound waits for the copy rather than for the writer."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    wal_bound.limit = 2 * MIB
    checkpoints = _recorded(db, monkeypatch)
    checkpoints.hold = True
    try:
        for _ in range(100):  # a copy starts after ~13 ops (an eighth of the bound)
            await db.grouped(_small, account=None, at_once=True)
            await asyncio.sleep(0.001)
            if checkpoints.copying.is_set():
                break
        assert checkpoints.copying.is_set()
        for _ in range(5):
            await asyncio.wait_for(db.grouped(_small, account=None, at_once=True), 2)
            await asyncio.wait_for(db.grouped(_small, account=None), 2)
        assert checkpoints.modes() == []  # the copy is still held
        checkpoints.release.set()
        await _settle(wal_bound)
        assert [(mode, turn) for mode, turn, _ in checkpoints.calls] == [("PASSIVE", False)]
    finally:
        checkpoints.release.set()
        await db.dispose()


async def test_the_periodic_checkpoint_copies_beside_the_commits(
    tmp_path, migrated_template, monkeypatch
):
    """Within the bound, the periodic checkpoint (`Database.checkpoint`, every second) copies
    the WAL with the writer's turn free, and commits go on meanwhile; it does not RESTART
    (before: a RESTART with the turn held, every second). Past the bound, it RESTARTs."""
    db = await _blobs_database(tmp_path, migrated_template)
    wal_bound = db.group._wal
    assert wal_bound is not None
    checkpoints = _recorded(db, monkeypatch)
    checkpoints.hold = True
    try:
        for _ in range(10):
            await db.grouped(_small, account=None)
        periodic = asyncio.create_task(db.checkpoint())
        for _ in range(200):
            if checkpoints.copying.is_set():
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(db.grouped(_small, account=None, at_once=True), 2)
        await asyncio.wait_for(db.grouped(_small, account=None), 2)
        checkpoints.release.set()
        await asyncio.wait_for(periodic, 5)
        assert [(mode, turn) for mode, turn, _ in checkpoints.calls] == [("PASSIVE", False)]
        _, _, (busy, held, copied) = checkpoints.calls[0]
        assert not busy and held == copied > 0
        wal_bound.limit = 64 * 1024
        async with db.write() as session:  # past it (a session: the committer would RESTART)
            await session.execute(text("INSERT INTO blobs VALUES (randomblob(100000))"))
        checkpoints.calls.clear()
        await db.checkpoint()
        assert [(mode, turn) for mode, turn, _ in checkpoints.calls] == [("RESTART", True)]
    finally:
        checkpoints.release.set()
        await db.dispose()
