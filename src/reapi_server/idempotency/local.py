"""The idempotency records this process has claimed, each with the event its waiters wait on.

A request that finds its key claimed by a request of the same process waits on that event (set
when the first request has recorded its answer, or failed) instead of asking the database; only
a waiter whose key another process claimed has to read the record again (`service.begin`)."""

from __future__ import annotations

import asyncio

__all__ = ["LocalClaims"]


class LocalClaims:
    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}

    def claimed(self, record_id: int) -> None:
        self._events[record_id] = asyncio.Event()

    def event(self, record_id: int) -> asyncio.Event | None:
        """The event of a record claimed here and not yet ended; None for any other."""
        return self._events.get(record_id)

    def ended(self, record_id: int) -> None:
        """The claim is over (its answer recorded, or the record dropped): wake its waiters."""
        event = self._events.pop(record_id, None)
        if event is not None:
            event.set()
