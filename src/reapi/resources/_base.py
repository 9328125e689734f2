"""What every resource shares: the client's setup, engine and options, and gateway calls with
retries. Sync and async twins differ only in how they wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .._engine import AsyncEngine, SyncEngine
from .._gateway import GatewayProtocols
from .._options import CallOptions, ClientOptions, Headers, Query, TimeoutOption
from .._retries import call_async, call_sync
from ..catalog import Route
from ..providers import Protocol

if TYPE_CHECKING:
    from .._client import _Setup

__all__ = ["AsyncResource", "SyncResource"]

T = TypeVar("T")
GATEWAY = "reapi-gateway"


class _Resource:
    def __init__(self, setup: _Setup, options: ClientOptions) -> None:
        self._setup = setup
        self._options = options

    def _call(
        self,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> CallOptions:
        return self._options.for_call(
            gateway=self._setup.gateway is not None,
            timeout=timeout,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    def _gateway_deadline(self, call: CallOptions) -> float:
        return call.timeout or self._setup.router.config.first_byte_timeout

    def _deadline(self, route: Route, call: CallOptions) -> float:
        """A route's first-byte deadline: the call's timeout, else the route's or router's."""
        return call.timeout or self._setup.router.first_byte_timeout(route)

    def _bounded(self, routes: tuple[Route, ...], call: CallOptions) -> tuple[Route, ...]:
        """The routes with the call's `timeout` bounding a streamed answer's silences too, as
        openai-python's timeout bounds every wait for a byte. A streamed route waits on its idle
        deadline (60 s on OpenAI's and Gemini's image streams), not on the first-byte one."""
        limit = call.timeout
        if limit is None:
            return routes
        return tuple(
            route.model_copy(update={"stream_idle_timeout": limit})
            if route.stream_idle_timeout is not None and route.stream_idle_timeout > limit
            else route
            for route in routes
        )

    @property
    def _gateway(self) -> GatewayProtocols:
        gateway = self._setup.gateway
        assert gateway is not None
        return gateway


class SyncResource(_Resource):
    def __init__(self, setup: _Setup, engine: SyncEngine, options: ClientOptions) -> None:
        super().__init__(setup, options)
        self._engine = engine

    def _through_gateway(
        self,
        build: Callable[[GatewayProtocols], Protocol[T]],
        call: CallOptions,
        *,
        retry: bool = True,
    ) -> T:
        """One gateway call, retried as `_retries` says (`retry=False`: a create without an
        idempotency key, which must never run twice)."""
        gateway, deadline = self._gateway, self._gateway_deadline(call)
        return call_sync(
            lambda: self._engine.drive(build(gateway), GATEWAY, deadline),
            retries=call.max_retries if retry else 0,
        )


class AsyncResource(_Resource):
    def __init__(self, setup: _Setup, engine: AsyncEngine, options: ClientOptions) -> None:
        super().__init__(setup, options)
        self._engine = engine

    async def _through_gateway(
        self,
        build: Callable[[GatewayProtocols], Protocol[T]],
        call: CallOptions,
        *,
        retry: bool = True,
    ) -> T:
        gateway, deadline = self._gateway, self._gateway_deadline(call)
        return await call_async(
            lambda: self._engine.drive(build(gateway), GATEWAY, deadline),
            retries=call.max_retries if retry else 0,
        )
