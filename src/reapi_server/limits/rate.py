"""Requests per minute per key: a token bucket in process memory.

It is per process on purpose: the hot path must not touch the database for it. With N workers an
operator who needs an exact global limit divides it by N (docs/server.md says so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

_PRUNE_AT = 50_000


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, per_minute: int) -> float | None:
        """Take one request; None if allowed, else the seconds until one would be."""
        if per_minute <= 0:
            return None
        now = self._clock()
        rate = per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(math.ceil((1.0 - tokens) / rate), 1)
        if len(self._buckets) >= _PRUNE_AT:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1.0, now)
        return None
