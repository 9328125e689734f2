"""The process's one Redis client, and whether Redis answers.

Every use goes through `call`: while Redis is down it returns None at once (the caller falls
back to what this process knows alone) and counts a fallback per feature; a failing call marks
it down. A background task (`watch`) pings it, and marks it up again once it answers: requests
never wait on a Redis that is known to be down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ..config import Settings
from ..extras import require
from ..observability.metrics import Metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["UNAVAILABLE", "RedisLink", "open_link"]

log = logging.getLogger("reapi_server.redis")

T = TypeVar("T")

#: What /readyz says of a Redis that does not answer.
UNAVAILABLE = "unavailable: per-process fallback"
_PING_WHILE_DOWN = 1.0
_PING_WHILE_UP = 5.0


class RedisLink:
    def __init__(self, client: Redis, *, prefix: str, metrics: Metrics) -> None:
        from redis.exceptions import ConnectionError, RedisError, TimeoutError

        self.client = client
        self.prefix = prefix
        self._metrics = metrics
        self._lost: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError)
        self._refused: tuple[type[BaseException], ...] = (RedisError,)
        self._up = True
        #: Called (no arguments) each time Redis answers again after an outage.
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []
        metrics.redis_up.set(1)

    @property
    def up(self) -> bool:
        return self._up

    @property
    def status(self) -> str:
        return "ok" if self._up else UNAVAILABLE

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def is_lost(self, error: BaseException) -> bool:
        """Does this error mean Redis is unreachable (rather than a bug in a command)?"""
        return isinstance(error, self._lost)

    async def call(self, feature: str, op: Callable[[Redis], Awaitable[T]]) -> T | None:
        """`op(client)`, or None (counted as a fallback of `feature`) while Redis is down or
        when it answers with an error: a request never fails for Redis's sake."""
        if self._up:
            try:
                return await op(self.client)
            except Exception as error:
                if self.is_lost(error):
                    self.mark_down(error)
                elif isinstance(error, self._refused):
                    log.error("redis refused a command", extra={"code": type(error).__name__})
                else:
                    raise
        self._metrics.redis_fallbacks.labels(feature).inc()
        return None

    def mark_down(self, error: BaseException) -> None:
        if self._up:
            log.warning("redis unavailable, falling back", extra={"code": type(error).__name__})
        self._up = False
        self._metrics.redis_up.set(0)

    async def _ping(self) -> bool:
        try:
            await self.client.ping()
        except Exception as error:
            if not self.is_lost(error):
                raise
            self.mark_down(error)
            return False
        return True

    async def watch(self) -> None:
        """Ping every few seconds (every second while down); mark Redis up when it answers."""
        while True:
            await anyio.sleep(_PING_WHILE_UP if self._up else _PING_WHILE_DOWN)
            if await self._ping() and not self._up:
                self._up = True
                self._metrics.redis_up.set(1)
                log.info("redis available again")
                for callback in self.on_reconnect:
                    await callback()

    async def aclose(self) -> None:
        await self.client.aclose()


def open_link(settings: Settings, metrics: Metrics) -> RedisLink | None:
    """The link for `redis_url`, or None without one. Nothing connects yet."""
    if settings.redis_url is None:
        return None
    require("redis_url", "redis", "redis")
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    timeout = settings.redis_timeout
    client: Any = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # No retries inside the client: a failed call falls back at once, `watch` reconnects.
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    return RedisLink(client, prefix=settings.redis_key_prefix, metrics=metrics)
