"""Wake-ups inside one process: who changes a video job says so (`JobChanges.changed`), and
whoever waits on that job (a stream of its events) wakes at once instead of at its next re-read.

Only this process's waiters hear a change. Waiters re-read the database every couple of seconds
anyway, so a change made by another process is seen late, never missed. A fleet can make the
wake-up immediate everywhere by backing `changed` with pub/sub: publish the job id there, and
call `wake(job_id)` for every id received (the local fan-out below, kept as it is).

The same `Signal` wakes this process's webhook sender when a job has ended here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio

__all__ = ["JobChanges", "Signal"]


class Signal:
    """A flag one task waits on. A signal given while nobody waits is kept for the next wait;
    its Event is made inside `wait` (anyio needs a running loop for that)."""

    __slots__ = ("_event", "_given")

    def __init__(self) -> None:
        self._given = False
        self._event: anyio.Event | None = None

    def fire(self) -> None:
        self._given = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a wait with a bound
        """Whether the signal was given (before or during the wait), at most `timeout` s."""
        if not self._given:
            self._event = anyio.Event()
            with anyio.move_on_after(timeout):
                await self._event.wait()
            self._event = None
        given, self._given = self._given, False
        return given


class JobChanges:
    """Who waits on which job, in this process."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Signal]] = {}
        #: Set when the process stops: waiters end what they do (a stream of events).
        self.closed = False

    def close(self) -> None:
        """The process is stopping: wake every watcher, which then sees `closed`."""
        self.closed = True
        for watchers in tuple(self._watchers.values()):
            for signal in tuple(watchers):
                signal.fire()

    def changed(self, job_id: str) -> None:
        """A job's state, progress or existence changed (committed): tell its watchers."""
        self.wake(job_id)

    def wake(self, job_id: str) -> None:
        for signal in tuple(self._watchers.get(job_id, ())):
            signal.fire()

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Signal]:
        """A signal fired by every change of the job while the block runs. Enter it before
        reading the job: a change between the read and the wait is then not lost."""
        signal = Signal()
        self._watchers.setdefault(job_id, set()).add(signal)
        try:
            yield signal
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[job_id]

    def watched(self) -> int:
        """How many jobs someone waits on here (for tests and metrics)."""
        return len(self._watchers)
