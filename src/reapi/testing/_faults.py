"""Fault switches: what a simulated upstream does wrong, set per simulator at run time.

Two kinds of fault live on two switches. The HTTP server applies the transport faults itself
(`SimServer.faults`); the rest can only be said in the provider's own words, so the app expresses
them from its own switch (`app.faults`). A server's switch hands those on to the app's switch,
so `server.faults.set(any_fault)` and the control endpoints work for every fault.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["APP_FAULTS", "TRANSPORT_FAULTS", "Fault", "FaultState", "FaultSwitch"]


class Fault(StrEnum):
    NONE = "none"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After (seconds)
    QUOTA_EXHAUSTED = "quota_exhausted"  # the provider's own "out of credit" answer (the app)
    REFUSE = "refuse"  # the listening socket is closed: connection refused
    RESET = "reset"  # the request is read, then the connection is reset (RST)
    HANG = "hang"  # the request is read, no byte is ever sent back
    #: A streamed answer (server-sent events) sends its headers, then nothing; an answer that
    #: is not streamed sends nothing at all (as HANG).
    HANG_FIRST_EVENT = "hang_first_event"
    #: A streamed answer sends every event but its last, then nothing; another answer sends its
    #: headers and half its body, then nothing.
    HANG_MID_STREAM = "hang_mid_stream"
    #: As HANG_MID_STREAM, then the connection is reset (RST).
    RESET_MID_STREAM = "reset_mid_stream"
    SLOW_BODY = "slow_body"  # headers at once, then the body trickles
    TRUNCATED_JSON = "truncated_json"  # 200 with half a JSON body
    #: A request on a kept-alive connection (one that already served a request) is read and
    #: the connection closed unanswered: the server's idle timeout fired as the request came.
    #: A request on a new connection is answered.
    STALE_CONNECTION = "stale_connection"
    CONTENT_POLICY = "content_policy"  # the provider's own content block (the app)
    TASK_FAILS = "task_fails"  # async tasks end in the provider's failed state (the app)


#: Faults the HTTP server applies itself, whatever the app.
TRANSPORT_FAULTS = frozenset(
    {
        Fault.ERROR_500,
        Fault.ERROR_503,
        Fault.RATE_LIMIT,
        Fault.REFUSE,
        Fault.RESET,
        Fault.HANG,
        Fault.HANG_FIRST_EVENT,
        Fault.HANG_MID_STREAM,
        Fault.RESET_MID_STREAM,
        Fault.SLOW_BODY,
        Fault.TRUNCATED_JSON,
        Fault.STALE_CONNECTION,
    }
)
#: Faults only the app can express, in its provider's words.
APP_FAULTS = frozenset(set(Fault) - TRANSPORT_FAULTS - {Fault.NONE})


@dataclass(frozen=True, slots=True)
class FaultState:
    fault: Fault = Fault.NONE
    #: Seconds sent in Retry-After (and the providers' own retry hints).
    retry_after: int = 2
    #: Only the next `count` requests get the fault (None: until cleared).
    count: int | None = None
    #: Seconds added before answering, to stand in for generation time; a streamed answer sends
    #: its headers at once and spreads this over its events. Outlives `count`.
    latency: float = 0.0


class FaultSwitch:
    """Thread-safe: tests and the control endpoints flip it while the server runs.

    `app_switch`: where app-level faults go (see the module docstring). Setting any fault here
    clears the app's switch, so one simulator has one fault at a time.
    """

    def __init__(self, app_switch: FaultSwitch | None = None) -> None:
        self._lock = threading.Lock()
        self._state = FaultState()
        self._app_switch = app_switch
        self._listeners: list[Callable[[FaultState], None]] = []

    @property
    def state(self) -> FaultState:
        """This switch's own state (app-level faults handed on are on the app's switch)."""
        return self._state

    @property
    def effective(self) -> FaultState:
        """The fault the next request meets, wherever it is held."""
        own, app = self._state, self._app_switch
        if own.fault is Fault.NONE and app is not None and app.state.fault is not Fault.NONE:
            return replace(app.state, latency=own.latency)
        return own

    def on_change(self, listener: Callable[[FaultState], None]) -> None:
        """Called (on the setting thread) whenever the state changes."""
        self._listeners.append(listener)

    def set(
        self,
        fault: Fault | str = Fault.NONE,
        *,
        retry_after: int = 2,
        count: int | None = None,
        latency: float = 0.0,
    ) -> None:
        fault = Fault(fault)
        if retry_after < 0 or latency < 0 or (count is not None and count < 1):
            raise ValueError("retry_after and latency must be >= 0, count >= 1 or None")
        if self._app_switch is not None:
            handed_on = fault in APP_FAULTS
            self._app_switch.set(
                fault if handed_on else Fault.NONE, retry_after=retry_after, count=count
            )
            if handed_on:
                fault, count = Fault.NONE, None
        self._replace(FaultState(fault, retry_after, count, latency))

    def clear(self) -> None:
        self.set(Fault.NONE)

    def take(self) -> FaultState:
        """The state for one request; counts a limited fault down."""
        with self._lock:
            state = self._state
            if state.fault is Fault.NONE or state.count is None:
                return state
            left = state.count - 1
            expired = left <= 0
            self._state = (
                FaultState(latency=state.latency) if expired else replace(state, count=left)
            )
        if expired:
            self._notify(self._state)
        return state

    def _replace(self, state: FaultState) -> None:
        with self._lock:
            self._state = state
        self._notify(state)

    def _notify(self, state: FaultState) -> None:
        for listener in self._listeners:
            listener(state)
