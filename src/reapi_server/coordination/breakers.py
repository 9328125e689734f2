"""Circuit breakers shared by the fleet: one instance's discovery of an outage spares the
others' first requests.

The router asks its `BreakerStore` synchronously, on data in memory (failover is never a network
wait), so this store is the in-memory one kept in step through Redis: when a route opens here,
that is published (and kept in Redis with an expiry, for instances that start later or were
cut off); when it closes again, that is published too. Durations travel as "open for this many
more milliseconds", never as times, so the hosts' clocks need not agree. A half-open route is
probed once per instance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from reapi.router import BreakerState, InMemoryBreakerStore

from .bus import Bus

__all__ = ["SharedBreakerStore"]

TOPIC = "breakers"


class SharedBreakerStore:
    def __init__(
        self, bus: Bus, instance_id: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.local = InMemoryBreakerStore()
        self._bus = bus
        self._instance = instance_id
        self._clock = clock
        bus.on(TOPIC, self._received)
        bus.on_subscribed.append(self.load)

    # -- BreakerStore ----------------------------------------------------------------------------
    def allow(self, key: str, now: float) -> bool:
        return self.local.allow(key, now)

    def state(self, key: str, now: float) -> BreakerState:
        return self.local.state(key, now)

    def release(self, key: str) -> None:
        self.local.release(key)

    def record_failure(self, key: str, now: float, *, open_for: float, threshold: int) -> None:
        before = self.local.opened_until(key)
        self.local.record_failure(key, now, open_for=open_for, threshold=threshold)
        after = self.local.opened_until(key)
        if after > before:
            self._tell(key, after - now)

    def record_success(self, key: str) -> None:
        was_open = self.local.opened_until(key) != 0.0
        self.local.record_success(key)
        if was_open:
            self._tell(key, 0.0)

    # -- the fleet -------------------------------------------------------------------------------
    def _tell(self, key: str, seconds: float) -> None:
        milliseconds = max(int(seconds * 1000), 0)
        self._bus.soon(self._share(key, milliseconds))

    async def _share(self, key: str, milliseconds: int) -> None:
        """Publish the change, and keep the open routes in Redis, each expiring when it would."""
        message = {"route": key, "open_ms": milliseconds, "from": self._instance}
        name = self._bus.link.key("breaker", key)

        async def write(client: Any) -> None:
            if milliseconds > 0:
                await client.set(name, b"1", px=milliseconds)
            else:
                await client.delete(name)

        await self._bus.link.call("breakers", write)
        await self._bus.publish(TOPIC, json.dumps(message).encode())

    def _received(self, data: bytes) -> None:
        message = json.loads(data)
        if message.get("from") != self._instance:
            self._apply(str(message["route"]), int(message["open_ms"]))

    def _apply(self, key: str, milliseconds: int) -> None:
        if milliseconds > 0:
            self.local.open_until(key, self._clock() + milliseconds / 1000)
        else:
            self.local.record_success(key)

    async def load(self) -> None:
        """Take in every route Redis says is open (at start, and after each reconnect)."""
        prefix = self._bus.link.key("breaker", "")

        async def read(client: Any) -> list[tuple[str, int]]:
            found = []
            async for name in client.scan_iter(match=prefix + "*", count=200):
                left = await client.pttl(name)
                if left > 0:
                    found.append((name.decode()[len(prefix) :], int(left)))
            return found

        for key, milliseconds in await self._bus.link.call("breakers", read) or []:
            self._apply(key, milliseconds)
