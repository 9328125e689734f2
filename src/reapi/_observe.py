"""What the engine tells an observer about each upstream attempt: metadata only.

An `AttemptObserver` given to an engine hears when each attempt of a failover (or hedged) run
starts and how it ended: the route, its place in the run, an outcome class, the error's stable
code and status, the time it took. Never a request, a body, a URL or a key. The gateway turns
these into trace spans; metrics could count them the same way. With no observer the engine does
nothing extra.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio

from ._exceptions import ReapiError
from ._frozen import quick_init
from .catalog import Route

__all__ = ["Attempt", "AttemptEnd", "AttemptObserver", "Outcome", "Watch"]

#: ok: its answer was used. error: it failed (`code` says how). cancelled: abandoned (a hedge
#: that lost, a request cancelled or failed elsewhere). crashed: an unexpected exception.
Outcome = Literal["ok", "error", "cancelled", "crashed"]


@dataclass(slots=True, eq=False)
class Attempt:
    route: Route
    #: 1 for a run's first attempt, then in the order they started.
    number: int
    #: Started after an earlier attempt of the run failed.
    failover: bool
    #: Started beside an attempt still running (hedging).
    hedge: bool
    #: The provider's host and port, when the run was told (`host_of`).
    host: str | None = None
    started: float = field(default_factory=time.perf_counter)
    #: The observer's own (its span, say); the engine never reads it.
    state: object = None


@quick_init
@dataclass(frozen=True, slots=True)
class AttemptEnd:
    outcome: Outcome
    #: "ok", the error's stable code, "cancelled", or the unexpected exception's type name.
    code: str
    #: The upstream's HTTP status, when the error carries one.
    status: int | None
    elapsed_ms: float

    @classmethod
    def of(cls, attempt: Attempt, error: BaseException | None) -> AttemptEnd:
        elapsed_ms = round((time.perf_counter() - attempt.started) * 1000, 2)
        if error is None:
            return cls("ok", "ok", None, elapsed_ms)
        if isinstance(error, ReapiError):
            return cls("error", error.code, error.status, elapsed_ms)
        if isinstance(error, asyncio.CancelledError | anyio.get_cancelled_exc_class()):
            return cls("cancelled", "cancelled", None, elapsed_ms)
        return cls("crashed", type(error).__name__, None, elapsed_ms)

    @classmethod
    def abandoned(cls, attempt: Attempt) -> AttemptEnd:
        """Still running when the run ended without it."""
        elapsed_ms = round((time.perf_counter() - attempt.started) * 1000, 2)
        return cls("cancelled", "cancelled", None, elapsed_ms)


class AttemptObserver(Protocol):
    """Called from the thread or task that runs the failover loop (the caller's), so an observer
    may use the caller's context (its current trace span). It must not raise, block or do I/O."""

    def on_attempt_start(self, attempt: Attempt) -> None: ...

    def on_attempt_end(self, attempt: Attempt, end: AttemptEnd) -> None: ...


class Watch:
    """One run's attempts as its observer hears of them: numbered, flagged, each ended once."""

    __slots__ = ("_host_of", "_observer", "failed", "launched", "running")

    def __init__(
        self, observer: AttemptObserver, host_of: Callable[[Route], str | None] | None = None
    ) -> None:
        self._observer = observer
        self._host_of = host_of
        self.launched = 0
        self.failed = 0
        self.running: list[Attempt] = []

    def start(self, route: Route) -> Attempt:
        self.launched += 1
        host = self._host_of(route) if self._host_of is not None else None
        attempt = Attempt(
            route, self.launched, failover=self.failed > 0, hedge=bool(self.running), host=host
        )
        self.running.append(attempt)
        self._observer.on_attempt_start(attempt)
        return attempt

    def end(self, attempt: Attempt, error: BaseException | None) -> None:
        if attempt not in self.running:
            return
        self.running.remove(attempt)
        end = AttemptEnd.of(attempt, error)
        if end.outcome == "error":
            self.failed += 1
        self._observer.on_attempt_end(attempt, end)

    def abandon_the_rest(self) -> None:
        """The run is over: whatever still runs was left behind."""
        for attempt in list(self.running):
            self.running.remove(attempt)
            self._observer.on_attempt_end(attempt, AttemptEnd.abandoned(attempt))
