"""Hearing SIGTERM and SIGINT before uvicorn's graceful shutdown waits for open connections.

uvicorn stops accepting, then waits for every response in flight to finish; a stream of events
would hold it for the stream's whole lifetime. `on_exit_signal` chains a callback (run on the
event loop) in front of the handler already installed (uvicorn's), so that such streams end at
once. Only the main thread may set signal handlers: elsewhere (a server in a test's thread) this
does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_exit_signal"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_exit_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on the running loop when SIGTERM or SIGINT arrives, then the previous
    handler. Returns the undo (which leaves alone a handler someone set after ours)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(callback)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:  # what would have happened without us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in _SIGNALS:
        previous[signum] = signal.signal(signum, handler)

    def undo() -> None:
        for signum, before in previous.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, before)

    return undo
