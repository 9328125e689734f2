"""Fault switches: what a simulated upstream does wrong, set per simulator at run time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Fault", "FaultState", "FaultSwitch"]


class Fault(StrEnum):
    NONE = "none"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After (seconds)
    QUOTA_EXHAUSTED = "quota_exhausted"  # the provider's own "out of credit" answer
    REFUSE = "refuse"  # the listening socket is closed: connection refused
    RESET = "reset"  # the request is read, then the connection is reset (RST)
    HANG = "hang"  # the request is read, no byte is ever sent back
    SLOW_BODY = "slow_body"  # headers at once, then the body trickles
    TRUNCATED_JSON = "truncated_json"  # 200 with half a JSON body
    CONTENT_POLICY = "content_policy"  # the provider's own content block (made by the app)
    TASK_FAILS = "task_fails"  # async tasks end in the provider's failed state (the app)


#: Faults the HTTP server applies itself; the rest are the app's to express.
TRANSPORT_FAULTS = frozenset(
    {
        Fault.ERROR_500,
        Fault.ERROR_503,
        Fault.RATE_LIMIT,
        Fault.REFUSE,
        Fault.RESET,
        Fault.HANG,
        Fault.SLOW_BODY,
        Fault.TRUNCATED_JSON,
    }
)


@dataclass(frozen=True, slots=True)
class FaultState:
    fault: Fault = Fault.NONE
    retry_after: int = 2
    #: Only the next `count` requests get the fault (None: until cleared).
    count: int | None = None
    #: Seconds added before answering, to stand in for generation time.
    latency: float = 0.0


class FaultSwitch:
    """Thread-safe: tests and the control endpoint flip it while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = FaultState()
        self._listeners: list[Callable[[FaultState], None]] = []

    @property
    def state(self) -> FaultState:
        return self._state

    def on_change(self, listener: Callable[[FaultState], None]) -> None:
        self._listeners.append(listener)

    def set(
        self,
        fault: Fault | str = Fault.NONE,
        *,
        retry_after: int = 2,
        count: int | None = None,
        latency: float = 0.0,
    ) -> None:
        with self._lock:
            self._state = FaultState(Fault(fault), retry_after, count, latency)
        for listener in self._listeners:
            listener(self._state)

    def clear(self) -> None:
        self.set(Fault.NONE)

    def take(self) -> FaultState:
        """The state for one request; counts down a limited fault."""
        with self._lock:
            state = self._state
            if state.fault is not Fault.NONE and state.count is not None:
                left = state.count - 1
                self._state = (
                    FaultState(latency=state.latency)
                    if left <= 0
                    else FaultState(state.fault, state.retry_after, left, state.latency)
                )
        if state.count is not None and self._state.fault is Fault.NONE:
            for listener in self._listeners:
                listener(self._state)
        return state
