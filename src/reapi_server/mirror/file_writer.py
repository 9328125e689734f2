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

The way back wakes the loop with the GIL already let go: the outcomes go on the loop's `_Waker`
and the thread writes to its eventfd (`os.eventfd_write` lets the GIL go before its system
call), which the loop watches. `call_soon_threadsafe` wakes the loop while the thread still
holds the GIL, and on one core the loop, run at once, then blocks on the GIL's condition variable
and on its mutex before it gets it: 6 context switches per write at one in flight instead of 2
(docs/benchmarks.md, "Seventh round: the output file"). A loop that cannot watch a descriptor
gets the outcomes by `call_soon_threadsafe`. Each loop's eventfd is closed when the thread leaves.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
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

    __slots__ = ("args", "function", "waker")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        waker: _Waker | None,
    ) -> None:
        super().__init__(loop)
        self.function = function
        self.args = args
        #: Its loop's way back (None: `call_soon_threadsafe`).
        self.waker = waker


class _Waker:
    """One loop's way back from the thread: the calls made, and an eventfd the loop watches."""

    __slots__ = ("descriptor", "done", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: deque[_Call] = deque()
        self.descriptor = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            loop.add_reader(self.descriptor, self.settle)
        except BaseException:  # a loop that cannot watch one (nothing is registered)
            os.close(self.descriptor)
            raise

    def wake(self) -> None:
        """On the thread: wake the loop (the GIL is let go before the system call)."""
        os.eventfd_write(self.descriptor, 1)

    def settle(self) -> None:
        """On the loop: each call made since the last wake-up gets its outcome."""
        with suppress(BlockingIOError):  # already read by an earlier wake-up's settle
            os.eventfd_read(self.descriptor)
        calls: list[_Call] = []
        while self.done:
            calls.append(self.done.popleft())
        _settle(calls)

    def close(self) -> None:
        """On the loop, once the thread has left: the last outcomes, then the eventfd."""
        self.settle()
        with suppress(RuntimeError):  # the loop is closing
            self.loop.remove_reader(self.descriptor)
        os.close(self.descriptor)

    def close_later(self) -> None:
        """From the thread as it leaves: closed on the loop, or now if the loop is closed."""
        try:
            self.loop.call_soon_threadsafe(self.close)
        except RuntimeError:  # nobody waits on a closed loop
            os.close(self.descriptor)


def _waker_for(loop: asyncio.AbstractEventLoop) -> _Waker | None:
    """A new way back for `loop`; None where it cannot watch an eventfd."""
    if not hasattr(os, "eventfd"):  # Linux only
        return None
    try:
        return _Waker(loop)
    except (NotImplementedError, OSError):  # a loop without add_reader; no descriptor to be had
        return None


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
        #: Each loop's way back, while a thread is there (`None`: that loop has none).
        self._wakers: dict[asyncio.AbstractEventLoop, _Waker | None] = {}

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the writer's thread; its result, or its error raised here."""
        loop = asyncio.get_running_loop()
        start = wake = False
        with self._mutex:  # with the queueing: the thread drops the wakers when it leaves
            try:
                waker = self._wakers[loop]
            except KeyError:
                waker = self._wakers[loop] = _waker_for(loop)
            call = _Call(loop, function, args, waker)
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
                    wakers, self._wakers = self._wakers, {}
                    break
            # A caller cleared `_sleeping` just as the wait ended: take its wake-up, then work.
            self._wake.acquire()
        for waker in wakers.values():
            if waker is not None:
                waker.close_later()


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
    wakers: dict[_Waker, None] = {}
    loops: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for call in batch:
        if call.waker is not None:
            call.waker.done.append(call)
            wakers[call.waker] = None
        else:
            loops.setdefault(call.loop, []).append(call)
    for waker in wakers:
        with suppress(OSError):  # not expected (the eventfd outlives the thread), not fatal
            waker.wake()
    for loop, calls in loops.items():
        with suppress(RuntimeError):  # that loop is closed: nobody waits for these any more
            loop.call_soon_threadsafe(_settle, calls)


def _settle(calls: list[_Call]) -> None:
    """On the loop: each caller gets its own outcome."""
    for call in calls:
        call.settle(call.result, call.error)
        call.error = None  # no cycle through the traceback's frames (the future has the error)
