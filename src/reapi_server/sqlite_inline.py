"""An aiosqlite connection that runs SQLite calls inline, on the event loop's thread.

aiosqlite hands every call (cursor, execute, fetch, close) to a worker thread and back: four
thread round trips per statement, which made the database most of a request's time. SQLite on a
local file answers in microseconds, so the gateway runs the calls inline instead. What could
block — waiting for another process's write lock — is never left to SQLite's busy handler:
`Database` sets `busy_timeout=0` on the writer and retries `BEGIN IMMEDIATE` with async sleeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

__all__ = ["InlineConnection", "connect_inline"]


class InlineConnection(aiosqlite.Connection):
    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The `sqlite3` connection itself: `group_commit` runs its statements on it directly."""
        connection: sqlite3.Connection = self._conn
        return connection


async def connect_inline(path: str) -> InlineConnection:
    def connector() -> sqlite3.Connection:
        # The connection is made on aiosqlite's thread and then used from the loop's.
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    connection = InlineConnection(connector, iter_chunk_size=64)
    await connection
    return connection
