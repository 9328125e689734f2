"""Deleted data leaves SQLite's write-ahead log within a bounded time.

`secure_delete` (`db`) zeroes what a deletion frees in the database file, but the WAL file
(`-wal`) still holds the page images written before it, until later writes overwrite that part
of the file. A checkpoint that restarts the WAL only rewinds it: the next commits overwrite the
file from its beginning, and whatever lies past them stays; `journal_size_limit` cuts the file
back only to the WAL's bound (16 MiB). On an idle server a deleted person's address could stay
there indefinitely. A TRUNCATE checkpoint copies every frame into the database and sets the
file to zero bytes.

So each deletion the privacy policy promises (an account, an output, the retention job's run, a
sent message's text) asks for one once it has committed (`Database.personal_data_deleted`). It
runs `ERASE_AFTER_SECONDS` after the first such deletion not yet erased, so that a burst of them
(an account's deletion and its outputs', the retention job's batches) shares one; never on a
request's path. It is the writer's RESTART with a different mode (`GroupCommitter.erase_wal`):
a copy beside the commits first, then the TRUNCATE between two transactions, holding the writer
only for what came since the copy and for the same bounded wait for readers. Readers on older
snapshots that outlast that wait: tried again every `_RETRY_SECONDS`. A deletion that commits
while one runs asks for the next. A process that stops (an administration command) truncates
before it closes the database.

The `-shm` file (the WAL-index) holds the WAL's header and page numbers, never a page's content.
The file system's free blocks, and backups, are beyond the gateway's reach (docs/accounts.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["ERASE_AFTER_SECONDS", "WalErasure"]

log = logging.getLogger("reapi_server.db")

#: A TRUNCATE comes this long after the first deletion it erases (the documented bound, with
#: readers permitting: docs/accounts.md).
ERASE_AFTER_SECONDS = 3.0
#: After a TRUNCATE that readers or another process kept from finishing.
_RETRY_SECONDS = 1.0
#: When the database is closed with an erasure still due: tries, each waiting for readers.
_TRIES_AT_CLOSE = 5


class WalErasure:
    """Schedules `truncate` (a TRUNCATE checkpoint: whether it finished) after deletions."""

    def __init__(self, truncate: Callable[[], Awaitable[bool]]) -> None:
        self._truncate = truncate
        self._task: asyncio.Task[None] | None = None
        #: A deletion committed that no TRUNCATE begun since has erased.
        self._due = False
        #: TRUNCATEs that finished (for tests).
        self.erased = 0

    def request(self) -> None:
        """A deletion just committed: a TRUNCATE within `ERASE_AFTER_SECONDS`, readers
        permitting (one already scheduled takes it along)."""
        self._due = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.sleep(ERASE_AFTER_SECONDS)
            while self._due:
                if await self._attempt():
                    if self._due:  # a deletion committed meanwhile: it may have come too late
                        await asyncio.sleep(ERASE_AFTER_SECONDS)
                else:
                    await asyncio.sleep(_RETRY_SECONDS)
        finally:
            self._task = None

    async def _attempt(self) -> bool:
        """One TRUNCATE; the deletions noted before it begins are erased if it finishes."""
        self._due = False
        done = False
        try:
            done = await self._truncate()
        except Exception as error:
            log.warning("WAL not truncated", extra={"code": type(error).__name__})
        finally:
            if not done:  # also when cancelled (the database closing): `aclose` tries again
                self._due = True
        if done:
            self.erased += 1
        return done

    async def aclose(self) -> None:
        """Before the database closes: what is still due is truncated now (a few tries)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        for _ in range(_TRIES_AT_CLOSE):
            if not self._due or await self._attempt():
                return
            await asyncio.sleep(_RETRY_SECONDS / 4)
        log.warning("WAL not truncated at close", extra={"code": "busy"})
