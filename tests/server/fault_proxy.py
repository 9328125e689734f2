"""A TCP fault proxy on loopback, between the gateway and a server it depends on (PostgreSQL,
Redis, S3): it passes bytes both ways until told to misbehave.

- `delay(s)`: every chunk, either way, is held `s` seconds first (a slow network);
- `drop()`: open connections are closed (FIN), new ones accepted and closed at once;
- `reset()`: open connections are reset (RST), new ones accepted and reset at once;
- `refuse()`: open connections are reset and the port stops listening (connection refused);
- `blackhole()`: nothing passes any more, either way, and nothing is closed: connections hang
  (a partition, a dead host), new ones are accepted and hang too;
- `reset_after(n)`: once `n` more bytes went towards the server, `refuse()` (a link that dies
  in the middle of an upload);
- `heal()`: pass everything again (connections cut before stay cut).

It runs its own asyncio loop in a daemon thread, so that tests of any kind (sync, async, other
processes) can use it; each call returns once the change is in effect.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_CHUNK = 65536


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (RST), not a FIN: SO_LINGER on, zero seconds."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self.mode = "pass"
        self.delay_seconds = 0.0
        self._budget: int | None = None
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._listen())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    # -- the faults ----------------------------------------------------------------------------
    def delay(self, seconds: float) -> None:
        self._run(self._set("pass", delay=seconds))

    def drop(self) -> None:
        self._run(self._set("drop", close=_close_gently))

    def reset(self) -> None:
        self._run(self._set("reset", close=_abort))

    def refuse(self) -> None:
        self._run(self._set("refuse", close=_abort))

    def blackhole(self) -> None:
        self._run(self._set("blackhole"))

    def reset_after(self, nbytes: int) -> None:
        self._run(self._budget_of(nbytes))

    def heal(self) -> None:
        self._run(self._set("pass"))

    def close(self) -> None:
        self._run(self._set("refuse", close=_abort))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- inside the proxy's loop ---------------------------------------------------------------
    async def _budget_of(self, nbytes: int) -> None:
        self._budget = nbytes

    async def _set(self, mode: str, *, delay: float = 0.0, close: Any = None) -> None:
        self.mode, self.delay_seconds, self._budget = mode, delay, None
        if close is not None:
            for client, server in list(self._pairs):
                close(client)
                if server is not None:
                    close(server)
            self._pairs.clear()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accepted, "127.0.0.1", self.port, reuse_address=True, backlog=512
        )

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "drop":
            _close_gently(writer)
            return
        if self.mode == "reset":
            _abort(writer)
            return
        if self.mode == "blackhole":
            pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
            self._pairs.add(pair)
            await self._swallow(reader)
            self._pairs.discard(pair)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, upload=True),
                self._pump(up_reader, writer, upload=False),
            )
        finally:
            self._pairs.discard(pair)
            for end in pair:
                if end is not None and not end.is_closing():
                    end.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(_CHUNK):
                pass
        except OSError:
            pass

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upload: bool
    ) -> None:
        try:
            while True:
                data = await source.read(_CHUNK)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue  # swallowed: neither end hears anything more
                if self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                if upload and self._budget is not None:
                    self._budget -= len(data)
                    if self._budget <= 0:
                        await self._set("refuse", close=_abort)
                        return
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if self.mode != "blackhole" and not sink.is_closing():
                try:
                    sink.write_eof()
                except OSError:
                    pass


def _close_gently(writer: asyncio.StreamWriter) -> None:
    writer.close()
