"""Requests per minute, per key and per account: a token bucket in process memory.

This is what a single process needs, and what every instance falls back to while Redis is down
(`limits.limiter`): the hot path never touches the database for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

__all__ = ["RateLimiter"]

_PRUNE_AT = 50_000


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, limits: Sequence[tuple[str, int]]) -> tuple[int, float] | None:
        """Take one request from every (bucket, per minute) limit, or from none: None when
        all allow it, else (the index of a limit that refused, seconds until it would not)."""
        now = self._clock()
        taken: list[tuple[str, float]] = []
        for index, (key, per_minute) in enumerate(limits):
            rate = per_minute / 60.0
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                return index, max(math.ceil((1.0 - tokens) / rate), 1)
            taken.append((key, tokens - 1.0))
        if len(self._buckets) >= _PRUNE_AT:
            self._buckets.clear()
        for key, tokens in taken:
            self._buckets[key] = (tokens, now)
        return None
