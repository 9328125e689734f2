"""Messages between the fleet's instances: Redis pub/sub on one connection per process.

Messages are hints, never the only way a thing is learnt: one sent while Redis is down, or while
this process was reconnecting, is lost. Whoever listens recovers by other means (breakers reload
their state from Redis on reconnect; waiters read the database after a while anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio

from .link import RedisLink

__all__ = ["Bus"]

log = logging.getLogger("reapi_server.redis")

Handler = Callable[[bytes], None]

_RECONNECT_PAUSE = 1.0
#: The longest the subscription's connection takes to close.
_CLOSE_SECONDS = 2.0


class Bus:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._handlers: dict[bytes, Handler] = {}
        #: Run each time the subscription is (re)established: what was missed is read then.
        self.on_subscribed: list[Callable[[], Awaitable[None]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def channel(self, topic: str) -> str:
        return self.link.key("bus", topic)

    def on(self, topic: str, handler: Handler) -> None:
        """Call `handler(data)` for each message on `topic` (from any instance, this one too)."""
        self._handlers[self.channel(topic).encode()] = handler

    async def publish(self, topic: str, data: bytes) -> None:
        async def send(client: Any) -> None:
            await client.publish(self.channel(topic), data)

        await self.link.call("pubsub", send)

    def soon(self, work: Coroutine[Any, Any, None]) -> None:
        """From synchronous code on the event loop: run `work` (a publish) without waiting."""
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop in this thread: nobody to tell
            work.close()
            return
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        """Wait for what `soon` started (before the process stops)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def run(self) -> None:
        """Listen for as long as the process runs, resubscribing after each outage."""
        while True:
            if not self.link.up:
                await anyio.sleep(_RECONNECT_PAUSE)
                continue
            try:
                await self._listen()
            except Exception as error:
                if not self.link.is_lost(error):
                    raise
                self.link.mark_down(error)
                await anyio.sleep(_RECONNECT_PAUSE)

    async def _listen(self) -> None:
        pubsub = self.link.client.pubsub()
        try:
            await pubsub.subscribe(*self._handlers)
            for callback in self.on_subscribed:
                await callback()
            while self.link.up:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                handler = self._handlers.get(message["channel"])
                if handler is not None:
                    try:
                        handler(message["data"])
                    except Exception as error:  # a bad message must not end the listener
                        log.warning("bad fleet message", extra={"code": type(error).__name__})
        finally:
            # Shielded (the connection goes back to the pool even when cancelled), but bounded:
            # a shutdown must not wait on Redis for ever.
            with anyio.move_on_after(_CLOSE_SECONDS, shield=True):
                try:
                    await pubsub.aclose()
                except Exception as error:
                    if not self.link.is_lost(error):
                        raise
