"""An answer's head written with its body: one write (one system call, one segment for a small
answer) instead of two.

uvicorn writes the status line and headers as soon as the app sends `http.response.start`, and
the body when it sends `http.response.body`: two writes, two `send` system calls, for an answer
whose two messages come in the same step of the event loop (every plain `Response`). `HeldHead`
is the connection's transport as one request's cycle sees it: it holds the head until the
body's first write and writes both at once. A body that comes later (a streamed answer, a file
read in a thread) finds the head already gone: it is written at the end of the step that made
it (`call_soon`), never later than the next step would have seen it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

__all__ = ["HeldHead"]


class _Cycle(Protocol):
    response_started: bool


class HeldHead:
    __slots__ = ("_cycle", "_head", "_head_seen", "_loop", "_transport")

    def __init__(
        self, transport: asyncio.Transport, cycle: _Cycle, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._transport = transport
        self._cycle = cycle
        self._loop = loop
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif self._cycle.response_started and not self._head_seen:
            # The first write once the answer started is its head (a `100 Continue` is
            # written before that, and goes at once).
            self._head_seen = True
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
