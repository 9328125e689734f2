"""Per-route circuit breakers: closed → open → half-open (one probe) → closed or open again.

State lives in memory per process by default. `BreakerStore` is the seam for sharing it (Redis,
a database): the router only calls these five methods.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["BreakerState", "BreakerStore", "InMemoryBreakerStore"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerStore(Protocol):
    def allow(self, key: str, now: float) -> bool:
        """May a request use this route now? In half-open, only one probe at a time may."""

    def record_success(self, key: str) -> None: ...

    def record_failure(self, key: str, now: float, *, open_for: float, threshold: int) -> None:
        """Count a failure; open for `open_for` seconds once `threshold` have come in a row."""

    def release(self, key: str) -> None:
        """An attempt ended without a verdict (cancelled): free the half-open probe slot."""

    def state(self, key: str, now: float) -> BreakerState: ...


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class InMemoryBreakerStore:
    """Thread-safe; shared by the sync and async faces of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}

    def _state(self, breaker: _Breaker, now: float) -> BreakerState:
        if breaker.open_until == 0.0:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < breaker.open_until else BreakerState.HALF_OPEN

    def state(self, key: str, now: float) -> BreakerState:
        with self._lock:
            breaker = self._breakers.get(key)
            return BreakerState.CLOSED if breaker is None else self._state(breaker, now)

    def allow(self, key: str, now: float) -> bool:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                return True
            state = self._state(breaker, now)
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.OPEN or breaker.probing:
                return False
            breaker.probing = True  # this caller is the half-open probe
            return True

    def record_success(self, key: str) -> None:
        with self._lock:
            self._breakers.pop(key, None)

    def release(self, key: str) -> None:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is not None:
                breaker.probing = False

    def record_failure(self, key: str, now: float, *, open_for: float, threshold: int) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(key, _Breaker())
            breaker.failures += 1
            was_probing = breaker.probing
            breaker.probing = False
            if was_probing or breaker.failures >= threshold:
                breaker.open_until = now + open_for

    # -- for a store that shares this one's state with other processes ------------------------
    def opened_until(self, key: str) -> float:
        """When the route's open spell ends (0.0: it is closed)."""
        with self._lock:
            breaker = self._breakers.get(key)
            return breaker.open_until if breaker is not None else 0.0

    def open_until(self, key: str, until: float) -> None:
        """Open the route until `until` (another process found it failing); no sooner than
        it already was."""
        with self._lock:
            breaker = self._breakers.setdefault(key, _Breaker())
            breaker.open_until = max(breaker.open_until, until)
            breaker.probing = False
