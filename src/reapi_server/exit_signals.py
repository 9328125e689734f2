"""Hearing SIGTERM and SIGINT before uvicorn's graceful shutdown waits for open connections.

uvicorn stops accepting, then waits for every response in flight to finish; a stream of events
would hold it for the stream's whole lifetime. `on_exit_signal` chains a callback (run on the
event loop) in front of the handler already installed (uvicorn's), so that such streams end at
once. Only the main thread may set signal handlers: elsewhere (a server in a test's thread) this
does nothing.

With a drain delay (`drain_delay_seconds`), the first signal only marks the process as leaving
(`leaving`: `/readyz` answers 503 and every answer closes its connection) and the drain, the
callback with it, begins when the delay is up; a second signal begins it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .leaving import LEAVING

__all__ = ["on_exit_signal"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("reapi_server")


def on_exit_signal(callback: Callable[[], None], delay: float = 0.0) -> Callable[[], None]:
    """Call `callback` on the running loop when SIGTERM or SIGINT arrives, then the previous
    handler; with a `delay`, the first signal marks the process as leaving and both wait that
    many seconds (or for a second signal). Returns the undo (which leaves alone a handler
    someone set after ours, and drops a delayed drain not begun)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    #: The delayed drain once scheduled; `passed_on` once a signal went on to the drain.
    delayed: list[asyncio.TimerHandle] = []
    passed_on = [False]

    def pass_on(signum: int, frame: FrameType | None) -> None:
        passed_on[0] = True
        for timer in delayed:
            timer.cancel()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(callback)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:  # what would have happened without us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def drain_later(signum: int) -> None:  # on the loop
        if passed_on[0]:  # a second signal came first
            return
        log.info("leaving: draining in %.3g s", delay)

        def drain_now() -> None:
            if not passed_on[0]:
                pass_on(signum, None)

        delayed.append(loop.call_later(delay, drain_now))

    def handler(signum: int, frame: FrameType | None) -> None:
        if delay > 0 and not LEAVING.now:
            LEAVING.now = True  # answers close their connections from now on
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(drain_later, signum)
            return
        pass_on(signum, frame)

    for signum in _SIGNALS:
        previous[signum] = signal.signal(signum, handler)

    def undo() -> None:
        for timer in delayed:
            timer.cancel()
        for signum, before in previous.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, before)

    return undo
