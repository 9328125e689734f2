"""Work on a daemon thread, as a `concurrent.futures.Future`.

The blocking client's parallel attempts (a hedge, a batch of requests) cannot be cancelled: an
abandoned one runs on to its own deadline. On a `ThreadPoolExecutor`'s threads that delayed the
program's exit by as long (the interpreter joins them as it exits), after a hedge was won or
after Ctrl-C; a daemon thread is left behind when the program ends, as nothing waits for what
it would return."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_daemon_thread"]

T = TypeVar("T")
A = TypeVar("A")


def in_daemon_thread(
    work: Callable[[A], T], argument: A, name: str = "reapi"
) -> concurrent.futures.Future[T]:
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = work(argument)
        except BaseException as error:  # handed to the waiter, who decides
            future.set_exception(error)
        else:
            future.set_result(result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
