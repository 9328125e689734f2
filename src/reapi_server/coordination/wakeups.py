"""Waiting for something that another request, or another instance, is about to do: a waiter
waits on a topic with a timeout, whoever does the thing notifies the topic. Within a process
that is an event; across the fleet a message on the bus (Redis pub/sub). Without Redis, or when
a message is lost, the waiter wakes at its timeout and looks for itself: wake-ups only make
waiting shorter, never needed for correctness.
"""

from __future__ import annotations

import asyncio

import anyio

from .bus import Bus

__all__ = ["Wakeups"]

TOPIC = "wake"


class Wakeups:
    def __init__(self, bus: Bus | None = None) -> None:
        self._bus = bus
        self._waiting: dict[str, set[asyncio.Event]] = {}
        if bus is not None:
            bus.on(TOPIC, self._received)

    async def wait(self, topic: str, seconds: float) -> bool:
        """Until `topic` is notified (True) or `seconds` passed (False)."""
        event = asyncio.Event()
        waiting = self._waiting.setdefault(topic, set())
        waiting.add(event)
        try:
            with anyio.move_on_after(seconds):
                await event.wait()
            return event.is_set()
        finally:
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(topic, None)

    def notify(self, topic: str) -> None:
        """Wake this process's waiters on `topic` now, and the other instances' soon."""
        self._wake(topic)
        if self._bus is not None:
            self._bus.soon(self._bus.publish(TOPIC, topic.encode()))

    def _received(self, data: bytes) -> None:
        self._wake(data.decode())

    def _wake(self, topic: str) -> None:
        for event in self._waiting.get(topic, ()):
            event.set()
