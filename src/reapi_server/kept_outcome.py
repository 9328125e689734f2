"""An outcome made elsewhere (by the group committer, by the local store's writer thread) for one
waiting task, and kept until that task has it, even when the task is cancelled meanwhile.

The task awaits `future` itself, so it resumes in the pass of the event loop after the outcome
is settled (through `asyncio.shield` it would be one pass later: the shield's relay is a
callback of its own). A cancellation of the task cancels only that future; the work goes on,
and a caller that must not leave before it is done (a credit hold that may exist, a file being
written that its cleanup must find) waits on with `wait_after_cancel`.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

import anyio

__all__ = ["KeptOutcome"]


class KeptOutcome:
    """A result or an error, settled once on the loop and kept beside the caller's future."""

    __slots__ = ("error", "future", "loop", "result", "settled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.settled = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Keep the outcome and hand it to the waiting future (a second settle changes nothing)."""
        if self.settled:
            return
        self.settled, self.result, self.error = True, result, error
        if not self.future.done():
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

    def outcome(self) -> Any:
        """The kept result, or its error raised."""
        if self.error is not None:
            raise self.error
        return self.result

    async def wait_after_cancel(self) -> None:
        """After the caller's await of `future` was cancelled: wait until the outcome is
        settled all the same, taking every further cancellation (the caller lets its own land
        afterwards). In anyio's shield: a cancelled anyio scope (Starlette's, when a client goes
        away) delivers its cancellation again on every pass of the loop until its task is
        shielded from it, and a wait that took each one would spin. The shield is entered only
        here: it costs ~7 us, and on the usual path nothing cancels."""
        with anyio.CancelScope(shield=True):
            while not self.settled:
                self.future = self.loop.create_future()
                with suppress(asyncio.CancelledError):
                    await self.future  # a bare task.cancel() again: wait on
