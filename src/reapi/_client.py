"""`ReAPI` and `AsyncReAPI`: the OpenAI-style entry points.

Two modes, one surface:
- in-process (default): reapi routes requests itself with your provider keys;
- gateway: with `base_url` (or `$REAPI_BASE_URL`), requests go to a reapi server that routes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ._engine import AsyncEngine, SyncEngine
from ._exceptions import ConfigurationError
from ._fetch import AsyncFetcher, SyncFetcher
from ._gateway import GatewayProtocols
from ._local import LocalCore
from ._secret import Secret
from ._settings import resolve_connections
from ._urls import UrlPolicy
from .catalog import Catalog, load_catalog
from .resources.images import AsyncImages, Images
from .resources.models import AsyncModels, Models
from .resources.videos import AsyncVideos, Videos
from .router import BreakerStore, Router, RouterConfig

__all__ = ["AsyncReAPI", "ReAPI"]


class _Setup:
    """What both clients resolve from their arguments."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        provider_keys: Mapping[str, str] | None,
        provider_base_urls: Mapping[str, str] | None,
        catalog: Catalog | str | os.PathLike[str] | None,
        router: RouterConfig | None,
        breakers: BreakerStore | None,
    ) -> None:
        base_url = base_url or os.environ.get("REAPI_BASE_URL")
        self.router = Router(router, breakers)
        self.gateway: GatewayProtocols | None = None
        self.core: LocalCore | None = None
        if base_url:
            key = api_key or os.environ.get("REAPI_API_KEY")
            if not key:
                raise ConfigurationError(
                    "gateway mode needs an API key: pass api_key= or set REAPI_API_KEY"
                )
            self.gateway = GatewayProtocols(base_url, Secret(key))
            # The gateway does the routing; the SDK only waits for its answer.
            if router is None:
                self.router = Router(RouterConfig(first_byte_timeout=600.0), breakers)
        else:
            resolved = (
                catalog
                if isinstance(catalog, Catalog)
                else load_catalog(Path(catalog) if catalog is not None else None)
            )
            connections = resolve_connections(resolved, provider_keys, provider_base_urls)
            self.core = LocalCore(resolved, connections)

    @property
    def mode(self) -> str:
        return "gateway" if self.gateway else "in-process"


class ReAPI:
    """Synchronous client.

    >>> client = ReAPI()  # provider keys from OPENAI_API_KEY, GEMINI_API_KEY, ...
    >>> result = client.images.generate(model="gpt-image-2", prompt="a lighthouse at dusk")

    `url_policy` governs the URLs reapi downloads itself for you (a source video for
    enhancement): public addresses only, every redirect checked, size-capped. URLs that an
    upstream reads itself are passed on unchanged.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        provider_keys: Mapping[str, str] | None = None,
        provider_base_urls: Mapping[str, str] | None = None,
        catalog: Catalog | str | os.PathLike[str] | None = None,
        router: RouterConfig | None = None,
        breakers: BreakerStore | None = None,
        http_client: httpx.Client | None = None,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self._setup = _Setup(
            api_key=api_key,
            base_url=base_url,
            provider_keys=provider_keys,
            provider_base_urls=provider_base_urls,
            catalog=catalog,
            router=router,
            breakers=breakers,
        )
        self._engine = SyncEngine(self._setup.router, http_client, SyncFetcher(url_policy))
        self.images = Images(self._setup, self._engine)
        self.videos = Videos(self._setup, self._engine)
        self.models = Models(self._setup, self._engine)

    @property
    def mode(self) -> str:
        return self._setup.mode

    @property
    def router(self) -> Router:
        return self._setup.router

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> ReAPI:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReAPI(mode={self.mode!r})"


class AsyncReAPI:
    """Asynchronous client (asyncio or trio via anyio); never blocks the event loop."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        provider_keys: Mapping[str, str] | None = None,
        provider_base_urls: Mapping[str, str] | None = None,
        catalog: Catalog | str | os.PathLike[str] | None = None,
        router: RouterConfig | None = None,
        breakers: BreakerStore | None = None,
        http_client: httpx.AsyncClient | None = None,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self._setup = _Setup(
            api_key=api_key,
            base_url=base_url,
            provider_keys=provider_keys,
            provider_base_urls=provider_base_urls,
            catalog=catalog,
            router=router,
            breakers=breakers,
        )
        self._engine = AsyncEngine(self._setup.router, http_client, AsyncFetcher(url_policy))
        self.images = AsyncImages(self._setup, self._engine)
        self.videos = AsyncVideos(self._setup, self._engine)
        self.models = AsyncModels(self._setup, self._engine)

    @property
    def mode(self) -> str:
        return self._setup.mode

    @property
    def router(self) -> Router:
        return self._setup.router

    async def aclose(self) -> None:
        await self._engine.aclose()

    async def __aenter__(self) -> AsyncReAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncReAPI(mode={self.mode!r})"
