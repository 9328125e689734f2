"""The idempotency records this process has claimed: the event their waiters wait on, and how
long each counts as running.

A request that finds its key claimed by a request of the same process waits on that event (set
when the first request has recorded its answer, or failed) instead of asking the database; only
a waiter whose key another process claimed has to read the record again (`service.begin`).

An `in_progress` record counts as running until its `alive_until`; past it, the sweeper takes its
process for dead and drops it. The process pushes it back while the request runs, as it does the
request's credit hold (`credits.renewal`): a request that outlasts the window keeps its key.
"""

from __future__ import annotations

import asyncio

from ..when_empty import WhenEmpty

__all__ = ["LocalClaims"]


class LocalClaims:
    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}
        self._alive_until: dict[int, float] = {}
        self._emptied = WhenEmpty()  # for `until_empty` (shutdown)

    def claimed(self, record_id: int, alive_until: float) -> None:
        self._events[record_id] = asyncio.Event()
        self._alive_until[record_id] = alive_until

    def event(self, record_id: int) -> asyncio.Event | None:
        """The event of a record claimed here and not yet ended; None for any other."""
        return self._events.get(record_id)

    def ended(self, record_id: int) -> None:
        """The claim is over (its answer recorded, or the record dropped): wake its waiters."""
        self._alive_until.pop(record_id, None)
        event = self._events.pop(record_id, None)
        if event is not None:
            event.set()
        self._emptied.removed(len(self._events))

    async def until_empty(self) -> None:
        """Return once every claim of this process has ended: at shutdown, a request cut at
        the end of the drain drops its unanswered record (`abandon`) after its hold is
        released, and needs the database until then."""
        await self._emptied.wait(len(self._events))

    def due(self, now: float, window: float) -> list[int]:
        """Records with less than two thirds of their window left (as `LiveHolds.due`)."""
        return [r for r, until in self._alive_until.items() if until - now < window * 2 / 3]

    def renewed(self, record_ids: list[int], alive_until: float) -> None:
        for record_id in record_ids:
            if record_id in self._alive_until:
                self._alive_until[record_id] = alive_until
