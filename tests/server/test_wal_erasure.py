"""Deleted data leaves SQLite's WAL within the documented bound (`wal_erasure`, docs/accounts.md
"What deleted means on disk"): after a deletion the WAL is truncated, not only rewound, so the
page images written before it are in no file of the database."""

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import text
from tests.web.helpers import deliver

from reapi_server.accounts.personal_data import PersonalData
from reapi_server.db import Database

#: docs/accounts.md: deleted data is out of the WAL within 5 seconds (no reader holding an
#: older snapshot meanwhile).
BOUND_SECONDS = 5.0


def files_holding(database: str, marker: bytes) -> list[str]:
    found = []
    for suffix in ("", "-wal", "-shm"):
        try:
            with open(database + suffix, "rb") as file:
                if marker in file.read():
                    found.append(database + suffix)
        except FileNotFoundError:
            pass
    return found


async def gone_within_bound(db: Database, database: str, marker: bytes, since: float) -> list[str]:
    """Wait up to the bound after `since` (the periodic checkpoint running meanwhile, as a
    server's does): the files still holding `marker` then, or [] once none does."""
    while True:
        await db.checkpoint()
        left = files_holding(database, marker)
        if not left or time.monotonic() - since > BOUND_SECONDS:
            return left
        await asyncio.sleep(0.25)


async def push_deep_into_the_wal(db: Database, pages: int) -> None:
    """Writes that put what comes next `pages` frames into the WAL: past what a deletion's
    own commits overwrite once the WAL starts over."""
    async with db.write() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS wal_filler (b BLOB)"))
        for _ in range(pages):
            await session.execute(text("INSERT INTO wal_filler VALUES (randomblob(4000))"))


async def test_a_deleted_account_leaves_the_wal_within_the_bound(gateway):
    """The audit's case: on an idle server, after a checkpoint, the deleted person's address
    stayed in `reapi.db-wal` until later traffic happened to overwrite it."""
    rt = gateway.rt
    database = str(gateway.data_dir / "reapi.db")
    marker = "wal-erasure-5d1c8e@example.com"
    await push_deep_into_the_wal(rt.db, 300)
    await gateway.account(email=marker)
    await rt.db.checkpoint()  # all copied: the next commit starts the WAL over
    assert database + "-wal" in files_holding(database, marker.encode())

    data = PersonalData.for_runtime(rt)
    user_id = await data.user_id_for(marker)
    assert user_id is not None
    assert await data.delete(user_id) is not None
    assert await deliver(rt) == 1  # the confirmation to the address: its row goes once sent
    deleted = time.monotonic()

    assert await gone_within_bound(rt.db, database, marker.encode(), deleted) == []


@pytest.fixture
def erase_soon(monkeypatch):
    monkeypatch.setattr("reapi_server.wal_erasure.ERASE_AFTER_SECONDS", 0.2)
    monkeypatch.setattr("reapi_server.wal_erasure._RETRY_SECONDS", 0.1)


async def _db_with_marker(path, marker: str) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v TEXT)"))
    await push_deep_into_the_wal(db, 100)
    async with db.write() as session:
        await session.execute(text("INSERT INTO t VALUES (:v)"), {"v": marker})
    await db.checkpoint()
    return db


async def _delete(db: Database, marker: str) -> None:
    async with db.write() as session:
        await session.execute(text("DELETE FROM t WHERE v = :v"), {"v": marker})
    db.personal_data_deleted()


async def test_deletions_in_a_burst_share_one_truncate(tmp_path, erase_soon):
    path = str(tmp_path / "b.db")
    marker = "burst-3b9e@example.com"
    db = await _db_with_marker(path, marker)
    for _ in range(5):
        await _delete(db, marker)
    await asyncio.sleep(0.6)
    assert db._erasure is not None and db._erasure.erased == 1
    assert files_holding(path, marker.encode()) == []
    assert db.group._wal is not None and db.group._wal.size() == 0
    await db.dispose()


async def test_a_reader_on_an_older_snapshot_only_delays_it(tmp_path, erase_soon):
    """A TRUNCATE waits for readers still on the WAL; past its wait it gives up and is tried
    again, never holding the writer longer than the RESTART at the bound does."""
    path = str(tmp_path / "r.db")
    marker = "reader-8a4f@example.com"
    db = await _db_with_marker(path, marker)
    async with db.write() as session:  # something in the WAL that the reader's snapshot needs
        await session.execute(text("INSERT INTO t VALUES ('later')"))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    await _delete(db, marker)
    await asyncio.sleep(1.5)
    assert db._erasure is not None and db._erasure.erased == 0
    assert path + "-wal" in files_holding(path, marker.encode())
    # Commits meanwhile wait at most for one try's short wait (the RESTART at the bound waits
    # up to 0.5 s for readers).
    slowest = 0.0
    for _ in range(10):
        started = time.monotonic()
        async with db.write() as session:
            await session.execute(text("INSERT INTO t VALUES ('meanwhile')"))
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.07)
    assert slowest < 0.4
    reader.execute("COMMIT")
    reader.close()
    await asyncio.sleep(1.0)
    assert db._erasure.erased == 1
    assert files_holding(path, marker.encode()) == []
    await db.dispose()


async def test_a_command_that_deletes_truncates_before_it_closes(tmp_path, erase_soon):
    """`reapi-server users delete` and the like end before the delay: the TRUNCATE comes as
    the database closes, while another process (a server) keeps the WAL open."""
    path = str(tmp_path / "c.db")
    marker = "command-61d2@example.com"
    server = sqlite3.connect(path, isolation_level=None)  # keeps the WAL from being deleted
    db = await _db_with_marker(path, marker)
    await _delete(db, marker)
    await db.dispose()
    assert files_holding(path, marker.encode()) == []
    server.close()
