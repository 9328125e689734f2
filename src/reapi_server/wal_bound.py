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
"""

from __future__ import annotations

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


class WalBound:
    def __init__(self, database: str, limit: int = WAL_LIMIT_BYTES) -> None:
        self.database = database
        self.limit = limit
        self._wal = database + "-wal"
        self._not_before = 0.0
        #: Checkpoints that completed (the WAL starts over), for tests and the soak bench.
        self.completed = 0

    def size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def due(self) -> bool:
        """Whether the WAL has passed its bound (one stat: cheap enough after every commit)."""
        return self.size() > self.limit and time.monotonic() >= self._not_before

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database and have it restarted; False when readers or another
        writer kept it from finishing within the wait (it is tried again later)."""
        done = await anyio.to_thread.run_sync(_restart, self.database)
        if done:
            self.completed += 1
        else:
            self._not_before = time.monotonic() + _RETRY_SECONDS
        return done


def _restart(database: str) -> bool:
    connection = sqlite3.connect(database, timeout=_BUSY_MS / 1000, isolation_level=None)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    finally:
        connection.close()
    return not busy
