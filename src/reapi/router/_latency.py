"""How long each route takes to answer lately: the durations of its last successful attempts,
from which the router reads a quantile (the hedging delay). Durations only, never a request."""

from __future__ import annotations

import math
import threading
from collections import deque

__all__ = ["RecentLatencies"]


class RecentLatencies:
    """Thread-safe; memory per route is bounded by `window` durations."""

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._seconds: dict[str, deque[float]] = {}

    def record(self, key: str, seconds: float) -> None:
        with self._lock:
            kept = self._seconds.get(key)
            if kept is None:
                kept = self._seconds[key] = deque(maxlen=self.window)
            kept.append(seconds)

    def quantile(self, key: str, q: float, *, min_samples: int) -> float | None:
        """The `q` quantile (nearest rank) of the route's recent durations; None with fewer
        than `min_samples` of them."""
        with self._lock:
            kept = sorted(self._seconds.get(key, ()))
        if not kept or len(kept) < min_samples:
            return None
        rank = max(math.ceil(q * len(kept)), 1)
        return kept[rank - 1]

    def count(self, key: str) -> int:
        with self._lock:
            return len(self._seconds.get(key, ()))
