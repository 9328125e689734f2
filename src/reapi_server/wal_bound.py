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
(`_BUSY_MS`); a checkpoint that could not finish is tried again after a later commit
(`_RETRY_SECONDS`), and what was committed meanwhile lets the WAL outgrow its bound that once.
Readers can keep a RESTART from finishing even when each reads for a few milliseconds only: two
whose reads overlap, taking turns on one of the WAL-index's read slots, hold it at every moment,
and the RESTART needs it to itself (seen with a cold page cache: 19 MiB at a 16 MiB bound).

Copying 16 MiB and syncing takes ~60 ms on a 2-core VM, and the RESTART holds the writer for all
of it: at one connection, where it comes every ~150 requests, that was the whole p99 (+40-48 ms
against a p50 of ~1.5). So the copying goes ahead, beside the commits: whenever the WAL holds an
eighth of its bound that no checkpoint has copied yet, a PASSIVE checkpoint copies it on a
worker thread (it takes no lock a writer needs, and `sqlite3` lets go of the GIL while it runs),
except within an eighth of the bound, where the RESTART is near: a copy still running at the bound
would make the writer wait for it as well.
What the WAL holds is read from its WAL-index (`wal_index`), not from the file's size, which
stays at the bound after a restart: a trigger on the size copied back to back (tried, issue 15's
seventh round: the CPU per request doubled). One copy at a time; one that readers or another
process kept from finishing is not tried again for `_RETRY_SECONDS`. The RESTART still comes at
the bound, and holds the writer only for what was committed since the last copy. A copy under
way when the bound is reached is not waited for by the writer until the WAL is `_OVERSHOOT` past
it: the RESTART comes after the first commit once the copy is done. The periodic checkpoint
(`checkpoint_interval`) only copies, beside the commits, unless the WAL is at its bound: a WAL
whose frames are all copied is started over by the next commit, readers permitting.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import anyio

from .wal_index import WalIndex

__all__ = ["WAL_LIMIT_BYTES", "WalBound"]

#: The WAL is checkpointed and restarted once it has grown past this; the file is cut back to it.
WAL_LIMIT_BYTES = 16 * 1024 * 1024
#: How long a checkpoint waits for the write lock and for readers on older snapshots.
_BUSY_MS = 500
#: A TRUNCATE after deletions (`wal_erasure`) waits less: nothing presses it, it is tried again.
_ERASE_BUSY_MS = 100
#: After a checkpoint that could not finish, the next try waits this long.
_RETRY_SECONDS = 0.05
#: A copy starts once the WAL holds this share of its bound not yet copied.
_COPY_SHARE = 1 / 8
#: Past the bound, the writer waits for a copy under way only once the WAL is this share past it.
_OVERSHOOT = 1 / 32


class WalBound:
    def __init__(self, database: str, limit: int = WAL_LIMIT_BYTES) -> None:
        self.database = database
        self.limit = limit
        self._wal = database + "-wal"
        self._not_before = 0.0
        #: Checkpoints that completed (the WAL starts over), for tests and the soak bench.
        self.completed = 0
        #: Checkpoints that readers or another writer kept from finishing within the wait.
        self.missed = 0
        self.index = WalIndex(database)
        #: The copy under way, beside the commits (one at a time), and when the next may start.
        self._copy: asyncio.Task[None] | None = None
        self._copy_not_before = 0.0
        #: Copies that ran (for tests and benches).
        self.copies = 0
        #: A RESTART is under way (no copy starts meanwhile).
        self._restarting = False
        #: The copies' and RESTARTs' connection, one of them at a time, kept: opening one and
        #: reading the schema cost ~1 ms of CPU, per copy when each opened its own.
        self._connection: sqlite3.Connection | None = None
        #: Its busy timeout (ms): the wait for the write lock and for readers.
        self._wait_ms = _BUSY_MS

    def size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def due(self) -> bool:
        """After a commit: whether the WAL holds more than its bound and not all of it is
        copied, so that the writer is to restart it now; short of that, whether a copy is to
        start. One read of the WAL-index (before it is opened, a `stat` first: a WAL file
        smaller than a copy's worth needs neither)."""
        if not self.index.opened() and self.size() < self.limit * _COPY_SHARE:
            return False
        frames = self.index.frames()
        if frames is None:  # no WAL-index to read: the file's size, as a bound only
            return self.size() > self.limit and time.monotonic() >= self._not_before
        held, copied, frame = frames
        if held * frame > self.limit and held > copied:
            if self._copy is not None and held * frame <= self.limit * (1 + _OVERSHOOT):
                return False  # the RESTART comes after the copy under way, not waiting for it
            return time.monotonic() >= self._not_before
        if (
            self._copy is None
            and not self._restarting
            and (held - copied) * frame >= self.limit * _COPY_SHARE
            and (held * frame) <= self.limit * (1 - _COPY_SHARE)
            and time.monotonic() >= self._copy_not_before
        ):
            self._copy = asyncio.get_running_loop().create_task(self._run_copy())
        return False

    async def copy(self) -> bool | None:
        """Copy what the WAL holds into the database, beside the commits (or wait for the copy
        under way): whether all of it was copied; None when nothing was left to copy, or there
        is no WAL-index to read (then only a RESTART can tell)."""
        if self._copy is None:
            if self._restarting:
                return None
            frames = self.index.frames()
            if frames is None or frames[0] == frames[1]:
                return None
            self._copy = asyncio.get_running_loop().create_task(self._run_copy())
        await asyncio.wait([self._copy])
        frames = self.index.frames()
        return frames is not None and frames[0] == frames[1]

    async def _run_copy(self) -> None:
        try:
            done = await anyio.to_thread.run_sync(self._checkpoint, "PASSIVE")
        except sqlite3.Error:
            done = False
        finally:
            self._copy = None
        self.copies += 1
        if not done:  # readers on older snapshots, or another process's checkpoint
            self._copy_not_before = time.monotonic() + _RETRY_SECONDS
        self.index.reopen()

    async def checkpoint(self, mode: str = "RESTART") -> bool:
        """Copy the WAL into the database and have it restarted (`mode` RESTART), or cut to
        zero bytes (TRUNCATE: `wal_erasure`); False when readers or another writer kept it
        from finishing within the wait (it is tried again later)."""
        if self._copy is not None:  # it holds SQLite's checkpoint lock: let it finish
            await asyncio.wait([self._copy])
        self._restarting = True
        try:
            done = await anyio.to_thread.run_sync(self._checkpoint, mode)
        finally:
            self._restarting = False
        if done:
            self.completed += 1
        else:
            self.missed += 1
            self._not_before = time.monotonic() + _RETRY_SECONDS
        return done

    def _checkpoint(self, mode: str) -> bool:
        """One `wal_checkpoint`, on a worker thread: whether it copied all the WAL held."""
        if self._connection is None:
            self._wait_ms = _BUSY_MS
            self._connection = sqlite3.connect(
                self.database,
                timeout=_BUSY_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        wait = _ERASE_BUSY_MS if mode == "TRUNCATE" else _BUSY_MS
        if wait != self._wait_ms:
            self._connection.execute(f"PRAGMA busy_timeout={wait}")
            self._wait_ms = wait
        row = self._connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        busy, held, copied = row
        return not busy and held == copied

    def close(self) -> None:
        """Close the kept connection, unless a copy or a RESTART is using it on its thread
        (closing it there would pull it from under them: `aclose` waits for a copy)."""
        if self._connection is not None and self._copy is None and not self._restarting:
            self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        if self._copy is not None:
            await asyncio.wait([self._copy])
        self.close()
