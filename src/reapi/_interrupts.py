"""Ctrl-C in blocking code that holds an httpcore connection pool.

A KeyboardInterrupt can land inside httpcore between taking its pool's lock and the `with`
that would give it back (the signal is raised at whatever bytecode runs next, here inside
the lock's `__enter__`). That pool then waits forever on its next request or its `close()`:
a program that caught the interrupt hangs as it cleans up. So a pool an interrupt passed
through is never touched again: it is dropped (its sockets close as it is collected)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


def _interrupted(kind: type[BaseException] | None) -> bool:
    return kind is not None and issubclass(kind, KeyboardInterrupt)


class OnInterrupt:
    """`then()` when a KeyboardInterrupt leaves the block (it still propagates)."""

    def __init__(self, then: Callable[[], None]) -> None:
        self._then = then

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if _interrupted(kind):
            self._then()


class ClosedUnlessInterrupted:
    """`close()` as the block ends, unless a KeyboardInterrupt ends it (see the module)."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not _interrupted(kind):
            self._close()
