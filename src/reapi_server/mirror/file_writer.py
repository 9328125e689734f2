"""The local store's changes to the disk, made on a thread of their own instead of the event loop.

A small output's write takes microseconds on a quiet disk, which is why it was made on the loop.
On a busy disk (other processes writing, Linux holding writers back while too much of its memory
waits to be written out) open, write, link and rename can each block for milliseconds to
seconds, and on the loop that stalls every request at once (issue 15: one loaded run saw the
loop held 1.4-2.2 s in 56 s). A thread per call (`anyio.to_thread`) costs tens of microseconds
of CPU each way. This writer is one thread that, each time it wakes, takes every call queued by
then, makes them one after the other, and hands all their results back to the loop in one
`call_soon_threadsafe`: a busy gateway pays one wake-up each way per batch, not per file.

Each call's result or error reaches its own caller; one failing call fails no other. A caller
waits for its call even when cancelled, so no write outlives the `put` that asked for it (a
failed request's cleanup then finds the file and deletes it), and calls are made in the order
they were queued (a delete after a put of the same key comes after it). The thread leaves after
`idle_seconds` without work (a gateway that stores nothing keeps no thread, nor does a test's
store) and starts again with the next call. At shutdown nothing is left to drain: every call
queued has a caller waiting for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

from ..kept_outcome import KeptOutcome

__all__ = ["FileWriter"]

T = TypeVar("T")

#: Seconds without work after which the thread leaves (the next call starts one again).
IDLE_SECONDS = 10.0


class _Call(KeptOutcome):
    """One file call; its result or error is set on the writer's thread and settled on the loop."""

    __slots__ = ("args", "function")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        function: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        super().__init__(loop)
        self.function = function
        self.args = args


class FileWriter:
    """Runs blocking file calls on one thread, in batches (see the module's docstring)."""

    def __init__(self, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._idle_seconds = idle_seconds
        self._mutex = threading.Lock()
        #: Released once to wake the sleeping thread; held whenever nobody is waking it.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._queued: list[_Call] = []
        self._running = False  # a thread is there (working or asleep)
        self._sleeping = False  # it waits on `_wake`, and nobody has woken it yet

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the writer's thread; its result, or its error raised here."""
        call = _Call(asyncio.get_running_loop(), function, args)
        start = wake = False
        with self._mutex:
            self._queued.append(call)
            if not self._running:
                self._running = start = True
            elif self._sleeping:
                self._sleeping = False
                wake = True
        if start:
            self._start()
        elif wake:
            self._wake.release()
        try:
            result: T = await call.future
        except asyncio.CancelledError:
            # Cancelling again changes nothing: the file is being written either way, and the
            # caller's cleanup must come after it.
            await call.wait_after_cancel()
            raise
        return result

    def _start(self) -> None:
        thread = threading.Thread(target=self._serve, name="reapi-file-writer", daemon=True)
        try:
            thread.start()
        except RuntimeError as error:  # no thread to be had: what is queued fails with that
            with self._mutex:
                failed, self._queued = self._queued, []
                self._running = False
            for call in failed:
                call.error = error
            _hand_back(failed)

    def _serve(self) -> None:
        while True:
            with self._mutex:
                batch, self._queued = self._queued, []
                if not batch:
                    self._sleeping = True
            if batch:
                _make(batch)
                continue
            if self._wake.acquire(timeout=self._idle_seconds):
                continue  # woken by `run`, which cleared `_sleeping`
            with self._mutex:
                if self._sleeping:  # nobody came: leave (the next call starts a thread)
                    self._sleeping = self._running = False
                    return
            # A caller cleared `_sleeping` just as the wait ended: take its wake-up, then work.
            self._wake.acquire()


def _make(batch: list[_Call]) -> None:
    """Make each call, then hand the outcomes back."""
    for call in batch:
        try:
            call.result = call.function(*call.args)
        except BaseException as error:  # every outcome goes back to its caller
            call.error = error
    _hand_back(batch)


def _hand_back(batch: list[_Call]) -> None:
    """The outcomes to their loops: one wake-up per loop (a gateway has one)."""
    loops: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for call in batch:
        loops.setdefault(call.loop, []).append(call)
    for loop, calls in loops.items():
        with suppress(RuntimeError):  # that loop is closed: nobody waits for these any more
            loop.call_soon_threadsafe(_settle, calls)


def _settle(calls: list[_Call]) -> None:
    """On the loop: each caller gets its own outcome."""
    for call in calls:
        call.settle(call.result, call.error)
        call.error = None  # no cycle through the traceback's frames (the future has the error)
