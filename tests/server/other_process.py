"""A second gateway on the same database and storage: its own app, runtime, database connections
and event loop, in a thread of its own — what another worker process (`--workers N`, or another
machine) is, minus the fork. Its upstream is the first gateway's fake."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from tests.conftest import two_host_catalog

from reapi.router import RouterConfig
from reapi_server.app import create_app
from reapi_server.runtime import Runtime

T = TypeVar("T")


class OtherProcess:
    def __init__(self, gateway: Any) -> None:
        settings = gateway.rt.settings
        self.settings = settings.model_copy(update={"database_url": settings.resolved_database_url})
        self.upstream = gateway.upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.app: Any = None
        self.rt: Runtime
        self.client: httpx.AsyncClient

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `function(*args)` on this process's event loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(function(*args), self.loop)
        return await asyncio.wrap_future(future)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self.client.request(method, path, **kwargs)

        return await self.call(send)

    async def _start(self) -> None:
        self.app = create_app(
            self.settings,
            catalog=two_host_catalog(),
            http_client=httpx.AsyncClient(transport=self.upstream.transport()),
            router_config=RouterConfig(first_byte_timeout=0.3, body_timeout=0.5),
            migrate=False,
        )
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.rt = self.app.state.runtime
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://other.test"
        )

    async def _stop(self) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    async def __aenter__(self) -> OtherProcess:
        self.thread.start()
        await self.call(self._start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.call(self._stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self.thread.join)
            self.loop.close()
