"""Keeping SQLite's write-ahead log bounded while traffic never stops.

Every commit appends to the WAL; a checkpoint copies it back into the database file, and the WAL
starts over from its beginning only once a checkpoint has copied all of it and no reader still
reads from it. A PASSIVE checkpoint beside live traffic never gets there: commits keep appending
while it copies, and readers keep older snapshots. Under steady load the file grew by ~36 KiB per
request and never shrank (issue 15).

So the writer checkpoints itself, between two of its group commits (`GroupCommitter`), once the
WAL has passed its bound: a RESTART checkpoint, on a worker thread, while the committer holds
its next transaction back. RESTART takes the write lock (another process's writer waits for it
as for any writer), waits for the readers still on older snapshots (new readers start on the
newest one, which holds nothing back), copies everything and syncs, so that the next commit
writes the WAL from its beginning again. `journal_size_limit` (set on every connection, `db`)
cuts the file back to the bound when that happens: the file keeps its blocks up to the bound,
which SQLite overwrites (cheaper than growing a file truncated to zero, measured: about a fifth
less CPU per transaction, checkpoints included). The file outgrows the bound again only once the
WAL holds more than the bound: that is when a checkpoint is due. Its waits are bounded
(`_BUSY_MS`); a checkpoint that could not finish is tried again after a later commit.

Copying 16 MiB and syncing takes ~50-60 ms on a 2-core VM, and the RESTART holds the writer for
all of it: at one connection, where it comes every ~150 requests, that was the whole p99 (+40-48
ms against a p50 of ~1.5). So the copy goes ahead: once the WAL passes three quarters of its
bound, a PASSIVE checkpoint copies what it holds on a worker thread, beside the commits (it takes
no lock a writer needs), and the RESTART that follows holds the writer only for what was
committed meanwhile (~10 ms instead of ~60 in `bench/`'s measure). The RESTART still comes at
the bound whatever the copy's state; one still running is waited for, rather than met at
SQLite's checkpoint lock.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import anyio

__all__ = ["WAL_LIMIT_BYTES", "WalBound"]

#: The WAL is checkpointed and restarted once it has grown past this; the file is cut back to it.
WAL_LIMIT_BYTES = 16 * 1024 * 1024
#: How long a checkpoint waits for the write lock and for readers on older snapshots.
_BUSY_MS = 500
#: After a checkpoint that could not finish, the next try waits this long.
_RETRY_SECONDS = 0.05
#: Past this share of the bound, the WAL is copied ahead, beside the commits.
_COPY_AHEAD = 3 / 4


class WalBound:
    def __init__(self, database: str, limit: int = WAL_LIMIT_BYTES) -> None:
        self.database = database
        self.limit = limit
        self._wal = database + "-wal"
        self._not_before = 0.0
        #: Checkpoints that completed (the WAL starts over), for tests and the soak bench.
        self.completed = 0
        #: Copies ahead that finished (for tests).
        self.copied_ahead = 0
        #: The WAL's size when `due` last looked.
        self._size = 0
        self._copy: asyncio.Task[None] | None = None
        #: A copy ahead finished since the last RESTART: the RESTART is due, and short.
        self._copied = False

    def size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def due(self) -> bool:
        """Whether the WAL is to be restarted now: it has passed its bound, or a copy ahead has
        finished (one stat: cheap enough after every commit)."""
        self._size = self.size()
        return (self._copied or self._size > self.limit) and time.monotonic() >= self._not_before

    def copy_ahead(self) -> None:
        """After a commit that found no checkpoint due: once the WAL has passed three quarters
        of its bound (as `due` saw it), start copying it into the database beside the commits.
        Nothing waits for the copy; the next commit finds the RESTART due once it is done."""
        if self._copy is None and not self._copied and self._size > self.limit * _COPY_AHEAD:
            self._copy = asyncio.get_running_loop().create_task(self._copy_ahead())

    async def _copy_ahead(self) -> None:
        try:
            await anyio.to_thread.run_sync(_checkpoint, self.database, "PASSIVE")
        except sqlite3.Error:  # the RESTART at the bound does the whole copy, as without one
            return
        finally:
            self._copy = None
        self._copied = True
        self.copied_ahead += 1

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database and have it restarted; False when readers or another
        writer kept it from finishing within the wait (it is tried again later)."""
        if self._copy is not None:  # a copy ahead holds SQLite's checkpoint lock: let it finish
            await asyncio.wait([self._copy])
        done = await anyio.to_thread.run_sync(_checkpoint, self.database, "RESTART")
        if done:
            self.completed += 1
            self._copied = False
        else:
            self._not_before = time.monotonic() + _RETRY_SECONDS
        return done


def _checkpoint(database: str, mode: str) -> bool:
    """One `wal_checkpoint` on a connection of its own: whether it finished."""
    connection = sqlite3.connect(database, timeout=_BUSY_MS / 1000, isolation_level=None)
    try:
        busy, _, _ = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    finally:
        connection.close()
    return not busy
