"""`ReAPI` and `AsyncReAPI`: the OpenAI-style entry points.

Two modes, one surface:
- in-process (default): reapi routes requests itself with your provider keys;
- gateway: with `base_url` (or `$REAPI_BASE_URL`), requests go to a reapi server that routes.

`with_options(...)` gives a copy with other options that shares the connection pool;
`with_raw_response` (gateway mode) gives each call's HTTP answer beside the parsed object.
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
from ._options import DEFAULT_MAX_RETRIES, ClientOptions, TimeoutOption
from ._raw_clients import AsyncReAPIWithRawResponse, ReAPIWithRawResponse
from ._secret import Secret
from ._settings import resolve_connections
from ._urls import UrlPolicy
from .catalog import Catalog, load_catalog
from .resources._jobs_memory import JobMemory
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
        options: ClientOptions,
    ) -> None:
        base_url = base_url or os.environ.get("REAPI_BASE_URL")
        self.router = Router(router, breakers)
        self.gateway: GatewayProtocols | None = None
        self.core: LocalCore | None = None
        #: The videos this client made: shared by its `with_options` copies.
        self.jobs = JobMemory()
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
            if api_key:
                # openai-python's habit (`OpenAI(api_key="sk-...")`): a provider's key given
                # here would be ignored unsaid, and the call fail for want of a key.
                raise ConfigurationError(
                    "api_key= is a reapi gateway's key and needs base_url= (or REAPI_BASE_URL); "
                    "in-process, give each provider's key as provider_keys={'openai': ...} or "
                    "its environment variable (OPENAI_API_KEY, GEMINI_API_KEY, ...)"
                )
            if options.default_headers:
                raise ConfigurationError(
                    "default_headers needs gateway mode (base_url=): in-process, each route "
                    "speaks its own provider's format"
                )
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

    def raw_responses(self) -> None:
        """Raise unless raw responses exist here: in-process, one call may span several
        providers' HTTP answers (its `reapi` field says which route served it)."""
        if self.gateway is None:
            raise ConfigurationError(
                "with_raw_response needs gateway mode (base_url=): in-process, a call may span "
                "several providers' answers; see the result's `reapi` field"
            )


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
        timeout: TimeoutOption = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        options = ClientOptions.given(timeout, max_retries, dict(default_headers or {}))
        setup = _Setup(
            api_key=api_key,
            base_url=base_url,
            provider_keys=provider_keys,
            provider_base_urls=provider_base_urls,
            catalog=catalog,
            router=router,
            breakers=breakers,
            options=options,
        )
        self._attach(setup, SyncEngine(setup.router, http_client, SyncFetcher(url_policy)), options)

    def _attach(self, setup: _Setup, engine: SyncEngine, options: ClientOptions) -> None:
        self._setup = setup
        self._engine = engine
        self._options = options
        self.images = Images(setup, engine, options)
        self.videos = Videos(setup, engine, options)
        self.models = Models(setup, engine, options)

    @property
    def mode(self) -> str:
        return self._setup.mode

    @property
    def router(self) -> Router:
        return self._setup.router

    @property
    def timeout(self) -> float | None:
        return self._options.timeout

    @property
    def max_retries(self) -> int:
        return self._options.max_retries

    def with_options(
        self,
        *,
        timeout: TimeoutOption = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> ReAPI:
        """A copy with these options changed (headers are added to the current ones). It
        shares this client's connection pool and videos: close only the original."""
        options = self._options.updated(
            timeout=timeout, max_retries=max_retries, default_headers=default_headers
        )
        if options.default_headers and self._setup.gateway is None:
            raise ConfigurationError("default_headers needs gateway mode (base_url=)")
        copy = object.__new__(ReAPI)
        copy._attach(self._setup, self._engine, options)
        return copy

    @property
    def with_raw_response(self) -> ReAPIWithRawResponse:
        """The same methods, each returning a `RawResponse` (status, headers, request id,
        `.parse()`). Gateway mode only."""
        self._setup.raw_responses()
        return ReAPIWithRawResponse(self)

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
        timeout: TimeoutOption = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        options = ClientOptions.given(timeout, max_retries, dict(default_headers or {}))
        setup = _Setup(
            api_key=api_key,
            base_url=base_url,
            provider_keys=provider_keys,
            provider_base_urls=provider_base_urls,
            catalog=catalog,
            router=router,
            breakers=breakers,
            options=options,
        )
        engine = AsyncEngine(setup.router, http_client, AsyncFetcher(url_policy))
        self._attach(setup, engine, options)

    def _attach(self, setup: _Setup, engine: AsyncEngine, options: ClientOptions) -> None:
        self._setup = setup
        self._engine = engine
        self._options = options
        self.images = AsyncImages(setup, engine, options)
        self.videos = AsyncVideos(setup, engine, options)
        self.models = AsyncModels(setup, engine, options)

    @property
    def mode(self) -> str:
        return self._setup.mode

    @property
    def router(self) -> Router:
        return self._setup.router

    @property
    def timeout(self) -> float | None:
        return self._options.timeout

    @property
    def max_retries(self) -> int:
        return self._options.max_retries

    def with_options(
        self,
        *,
        timeout: TimeoutOption = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> AsyncReAPI:
        """A copy with these options changed (headers are added to the current ones). It
        shares this client's connection pool and videos: close only the original."""
        options = self._options.updated(
            timeout=timeout, max_retries=max_retries, default_headers=default_headers
        )
        if options.default_headers and self._setup.gateway is None:
            raise ConfigurationError("default_headers needs gateway mode (base_url=)")
        copy = object.__new__(AsyncReAPI)
        copy._attach(self._setup, self._engine, options)
        return copy

    @property
    def with_raw_response(self) -> AsyncReAPIWithRawResponse:
        """The same methods, each returning a `RawResponse` (status, headers, request id,
        `.parse()`). Gateway mode only."""
        self._setup.raw_responses()
        return AsyncReAPIWithRawResponse(self)

    async def aclose(self) -> None:
        await self._engine.aclose()

    async def close(self) -> None:
        """`aclose()` by openai-python's name (`await client.close()`)."""
        await self.aclose()

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
