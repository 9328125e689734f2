"""`WhenEmpty`: a wait, at shutdown, for a process's running requests to end.

`LiveHolds` (their credit holds) and `LocalClaims` (their idempotency records) each keep what
the running requests hold; at shutdown the lifespan waits for both to empty before it closes
the database those requests still write to.
"""

from __future__ import annotations

import anyio

__all__ = ["WhenEmpty"]


class WhenEmpty:
    """Told how many are left after each removal (`removed`), wakes every waiter (`wait`) once
    none is: the lifespan's wait, and any other (a second shutdown path, a test) beside it."""

    def __init__(self) -> None:
        self._emptied: anyio.Event | None = None

    def removed(self, left: int) -> None:
        if self._emptied is not None and not left:
            self._emptied.set()
            self._emptied = None  # the next wait, once more are added, waits afresh

    async def wait(self, left: int) -> None:
        if left:
            if self._emptied is None:  # one event for all who wait: each is woken
                self._emptied = anyio.Event()
            await self._emptied.wait()
