"""What happened on each route lately: attempts and failures over the last five minutes, in
ten-second steps, for a status page. Only counts: never which request, never what it asked."""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["RecentOutcomes"]


class RecentOutcomes:
    """Thread-safe; memory per route is bounded by `window / step` buckets."""

    def __init__(self, window: float = 300.0, step: float = 10.0) -> None:
        self.window = window
        self.step = step
        self._lock = threading.Lock()
        #: route key → [bucket index, attempts, failures], oldest first.
        self._buckets: dict[str, deque[list[int]]] = {}

    def _first_kept(self, now: float) -> int:
        return int((now - self.window) // self.step) + 1

    def record(self, key: str, *, failed: bool, now: float) -> None:
        index = int(now // self.step)
        with self._lock:
            buckets = self._buckets.get(key)
            if buckets is None:
                buckets = self._buckets[key] = deque()
            elif buckets and buckets[-1][0] == index:  # the usual case: the old ones went already
                last = buckets[-1]
                last[1] += 1
                last[2] += failed
                return
            buckets.append([index, 1, int(failed)])
            first = self._first_kept(now)
            while buckets and buckets[0][0] < first:
                buckets.popleft()

    def totals(self, key: str, now: float) -> tuple[int, int]:
        """(attempts, failures) on the route in the window that ends now."""
        first = self._first_kept(now)
        with self._lock:
            kept = [b for b in self._buckets.get(key, ()) if b[0] >= first]
        return sum(b[1] for b in kept), sum(b[2] for b in kept)
