"""Ctrl-C in blocking code that holds an httpcore connection pool.

A KeyboardInterrupt can land inside httpcore between taking its pool's lock and the `with`
that would give it back (the signal is raised at whatever bytecode runs next, here inside
the lock's `__enter__`). That pool then waits forever on its next request or its `close()`:
a program that caught the interrupt hangs as it cleans up. So a pool an interrupt passed
through is never touched again: it is dropped (its sockets close as it is collected)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


def _nothing() -> None:
    return None


class _AfterBlock:
    """As the block ends: `interrupted()` if a KeyboardInterrupt ends it (it still
    propagates), else `otherwise()`."""

    def __init__(
        self, interrupted: Callable[[], None], otherwise: Callable[[], None] = _nothing
    ) -> None:
        self._interrupted = interrupted
        self._otherwise = otherwise

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self._interrupted()
        else:
            self._otherwise()


def on_interrupt(then: Callable[[], None]) -> _AfterBlock:
    """`then()` when a KeyboardInterrupt leaves the block (it still propagates). Reusable."""
    return _AfterBlock(then)


def closed_unless_interrupted(close: Callable[[], None]) -> _AfterBlock:
    """`close()` as the block ends, unless a KeyboardInterrupt ends it (see the module)."""
    return _AfterBlock(_nothing, close)
