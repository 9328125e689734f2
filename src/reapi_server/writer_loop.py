"""An event loop on a thread of its own, for the group committer's PostgreSQL connection.

On the gateway's event loop every statement of a group commit waited, after its answer
arrived, for the loop's next turn before the next statement could be sent; under load a turn
runs every other request's ready callbacks first, so a transaction of N ops (BEGIN, the
accounts' lock with the commit marker, N statements, COMMIT: N + 3 round trips) took N + 3
such turns while the gateway's core was a third idle. Here the transaction's statements follow
each other as soon as the server answers; the gateway's loop waits once per transaction.
Each round trip still wakes this thread, which then waits for the GIL (and, pinned, for the
gateway's core): `pg_pipeline` makes a batch about four of them whatever its size.

Only the committer's own connection lives here (made from an engine created on this loop:
asyncpg connections belong to the loop that opened them). The ops themselves run here too:
they await nothing but their `Tx` (`Database.grouped`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WriterLoop"]

T = TypeVar("T")


class WriterLoop:
    """`await run(fn)` runs `fn()` (a coroutine function) on the thread's loop, started on
    first use; `stop` ends it."""

    def __init__(self, name: str = "reapi-db-writer") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await fn()

        future = asyncio.run_coroutine_threadsafe(call(), self._started())
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Stop the loop and wait for its thread (what runs on it must be done by then)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
