"""Everything a server process holds once: database, core, engine, storage, limits, metrics.

The core objects are the SDK's own (`LocalCore`, `AsyncEngine`, `Router`): the server routes,
fails over and talks to providers exactly as the in-process SDK does.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from reapi.catalog import Catalog, load_catalog
from reapi.core import (
    GATEWAY_HINTS,
    AsyncEngine,
    AsyncFetcher,
    AttemptObserver,
    LocalCore,
    excerpt,
    resolve_connections,
)
from reapi.router import HedgePolicy, Router, RouterConfig

from .alerts.crossings import AlertMail
from .alerts.watch import AlertWatch
from .api_keys.auth import Authenticator
from .billing.auto_top_up import Watcher, top_up_coming
from .billing.service import Billing
from .config import ConfigError, Settings
from .coordination import RedisLink, open_link
from .coordination.breakers import SharedBreakerStore
from .coordination.bus import Bus
from .coordination.wakeups import Wakeups
from .credits.live import LiveHolds
from .credits.pending import PendingReleases
from .db import Database
from .email.compose import MailComposer
from .extras import OTEL_PACKAGES, require
from .idempotency.local import LocalClaims
from .jobs.changes import JobChanges, Signal
from .jobs.memory import PayloadMemory, payload_memory
from .limits.limiter import Limiter
from .mirror import ObjectStore, build_store
from .mirror.keys import OutputNames
from .observability.metrics import Metrics
from .pinned_connect import pin_client
from .result_urls import CheckedTransport, ResultUrls
from .upstream import aiohttp_engine
from .upstream_h1 import H1Transport

if TYPE_CHECKING:  # OpenTelemetry is imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncSession

    from .observability.tracing.setup import Tracing

__all__ = ["Runtime", "build_runtime"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    db: Database
    catalog: Catalog
    core: LocalCore
    router: Router
    engine: AsyncEngine
    store: ObjectStore
    auth: Authenticator
    limiter: Limiter
    metrics: Metrics
    #: Redis, shared by the fleet's instances; None without `redis_url`.
    redis: RedisLink | None = None
    #: Messages between the fleet's instances (Redis pub/sub); None without Redis.
    bus: Bus | None = None
    #: Wake-ups for requests and loops that wait on another's work (across the fleet with Redis).
    wakeups: Wakeups = field(default_factory=Wakeups)
    #: The fleet's secret (`fleet_secret`); None in a runtime that keys nothing (administration).
    secret: bytes | None = None
    clock: Callable[[], float] = time.time
    #: Identifies this process as a lease owner of video jobs.
    instance_id: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(4)}")
    #: Downloads the URLs callers hand the gateway (SSRF-checked, size-capped).
    fetcher: AsyncFetcher = field(default_factory=AsyncFetcher)
    #: Idempotency keys claimed by this process: their waiters here wait on an event.
    idempotency_claims: LocalClaims = field(default_factory=LocalClaims)
    #: Bodies of video jobs submitted by this process, for their one resubmission (memory only).
    memory: PayloadMemory = field(init=False)
    #: Credit holds of the image requests running in this process (renewed while they run).
    live_holds: LiveHolds = field(default_factory=LiveHolds)
    #: Releases of holds that met an unavailable database, tried again each second.
    pending_releases: PendingReleases = field(default_factory=PendingReleases)
    #: Stripe checkout, webhooks, refunds and auto top-up (`billing`).
    billing: Billing = field(init=False)
    #: Automatic top-ups, started off the request path by the accounts requests charged.
    auto_top_up: Watcher = field(init=False)
    #: The low-balance and key spend alerts, watched on each hold's closing (`alerts.watch`).
    alerts: AlertWatch = field(init=False)
    #: Posts webhooks (SSRF-checked at every attempt, under `webhook_allow_networks`).
    webhook_fetcher: AsyncFetcher = field(default_factory=AsyncFetcher)
    #: Checks the URLs upstream answers send the gateway to (`result_urls`); None: unchecked
    #: (a runtime built by hand, with an engine of its own).
    result_urls: ResultUrls | None = None
    #: Wakes the streams of a job's events when it changes (in this process; see `changes`).
    job_changes: JobChanges = field(default_factory=JobChanges)
    #: Event streams open in this process, per API key id.
    event_streams: Counter[str] = field(default_factory=Counter)
    #: Wakes this process's webhook sender when a job ended here.
    webhook_wakeup: Signal = field(default_factory=Signal)
    #: OpenTelemetry tracing; None (the default) when off.
    tracing: Tracing | None = None
    _output_names: OutputNames | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.memory = payload_memory(self.settings, self.now)
        self.billing = Billing.from_settings(self.settings, self.db, self.now)
        self.auto_top_up = Watcher(self.billing)
        billing = self.billing

        async def coming(session: AsyncSession, account_id: str) -> bool:
            return await top_up_coming(session, billing, account_id)

        self.alerts = AlertWatch(
            AlertMail(self.db, MailComposer.from_settings(self.settings), self.now, coming)
        )

    def now(self) -> float:
        return self.clock()

    @property
    def fingerprint_secret(self) -> bytes:
        if self.secret is None:
            raise RuntimeError("this runtime was built without the fleet's secret")
        return self.secret

    @property
    def output_names(self) -> OutputNames:
        """The keys outputs are stored under (named with the fleet's secret)."""
        if self._output_names is None:
            self._output_names = OutputNames(self.fingerprint_secret)
        return self._output_names

    async def aclose(self) -> None:
        await self.billing.aclose()
        await self.engine.aclose()
        await self.db.dispose()
        if self.bus is not None:
            await self.bus.flush()  # what was said (a key revoked by the CLI) goes out first
        if self.redis is not None:
            await self.redis.aclose()
        if self.tracing is not None:
            await self.tracing.aclose()  # last: the spans of everything above are sent


def _engine(
    settings: Settings,
    router: Router,
    http_client: httpx.AsyncClient | None,
    fetcher: AsyncFetcher,
    observer: AttemptObserver | None,
    result_urls: ResultUrls,
) -> AsyncEngine:
    """The setting's client for provider calls (`h1`: `upstream_h1`, the default); an injected
    httpx client (tests, an embedding application) is always used as given.

    Each client connects only to addresses `result_urls` passed (DNS rebinding): h1 and aiohttp
    check what they resolved, and the engine's own httpx client (the `httpx` transport, streams,
    the mirror's copy of a video) gets a pinned network backend when it is made."""

    def pinned(client: httpx.AsyncClient) -> None:
        pin_client(client, result_urls.host_check, result_urls.trusts)

    if http_client is None and settings.upstream_client == "h1":
        h1 = H1Transport()
        h1.address_check = result_urls.connect_check
        return AsyncEngine(router, None, fetcher, h1, observer, client_setup=pinned)
    if http_client is None and settings.upstream_client == "aiohttp":
        return aiohttp_engine(
            router,
            fetcher=fetcher,
            observer=observer,
            client_setup=pinned,
            address_check=result_urls.host_check,
        )
    return AsyncEngine(router, http_client, fetcher, observer=observer, client_setup=pinned)


def _tracing(settings: Settings, exporter: SpanExporter | None) -> Tracing | None:
    """Tracing when the settings ask for it; nothing of OpenTelemetry is imported otherwise."""
    if not settings.tracing:
        return None
    require("tracing = true", "otel", *OTEL_PACKAGES)
    from .observability.tracing.setup import start_tracing

    return start_tracing(settings, exporter)


def _database(settings: Settings, tracing: Tracing | None) -> Database:
    url, timeout = settings.resolved_database_url, settings.database_timeout
    if tracing is None:
        return Database(url, timeout=timeout)
    from .observability.tracing.database import TracedDatabase

    return TracedDatabase(url, timeout=timeout, tracing=tracing)


def _store(settings: Settings, store: ObjectStore | None, tracing: Tracing | None) -> ObjectStore:
    store = store or build_store(settings)
    if tracing is None:
        return store
    from .observability.tracing.storage import TracedStore

    return TracedStore(store, tracing, settings.storage_backend)


def _observer(tracing: Tracing | None, core: LocalCore) -> AttemptObserver | None:
    if tracing is None:
        return None
    from .observability.tracing.attempts import AttemptSpans

    return AttemptSpans(tracing, core.host_of)


def _router_config(settings: Settings, catalog: Catalog) -> RouterConfig:
    routes = {route.key for model in catalog.models.values() for route in model.routes}
    unknown = sorted(set(settings.hedge_models) - set(catalog.models) - routes)
    if unknown:
        raise ConfigError(
            f"hedge_models names {excerpt(unknown[0])!r}, which is neither a model id nor a "
            "route (provider/upstream_model) of the catalog"
        )
    hedge = HedgePolicy(
        allow=frozenset(settings.hedge_models),
        quantile=settings.hedge_quantile,
        floor=settings.hedge_floor_seconds,
        min_samples=settings.hedge_min_samples,
    )
    if settings.first_byte_timeout:
        return RouterConfig(first_byte_timeout=settings.first_byte_timeout, hedge=hedge)
    return RouterConfig(hedge=hedge)


def build_runtime(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    http_client: httpx.AsyncClient | None = None,
    store: ObjectStore | None = None,
    router_config: RouterConfig | None = None,
    clock: Callable[[], float] = time.time,
    fetcher: AsyncFetcher | None = None,
    secret: bytes | None = None,
    span_exporter: SpanExporter | None = None,
) -> Runtime:
    """`span_exporter`: with tracing on, where spans go instead of OTLP/HTTP (tests)."""
    if settings.writes_data_dir:  # on PostgreSQL, S3 and Resend: nothing to keep there
        settings.ensure_data_dir()
    tracing = _tracing(settings, span_exporter)
    catalog = catalog or load_catalog(settings.catalog_path)
    keys = {name: key.get_secret_value() for name, key in settings.provider_keys.items()}
    connections = resolve_connections(catalog, keys, settings.provider_base_urls)
    if router_config is None:
        router_config = _router_config(settings, catalog)
    metrics = Metrics()
    instance_id = f"{os.getpid()}-{secrets.token_hex(4)}"
    redis = open_link(settings, metrics)
    bus = Bus(redis) if redis is not None else None
    breakers = SharedBreakerStore(bus, instance_id) if bus is not None else None
    router = Router(router_config, breakers)
    db = _database(settings, tracing)
    metrics.watch_breakers(router, catalog, connections)
    fetcher = fetcher or AsyncFetcher(settings.url_policy)
    core = LocalCore(catalog, connections, hints=GATEWAY_HINTS)
    result_urls = ResultUrls(connections.values(), settings.url_policy)
    engine = _engine(settings, router, http_client, fetcher, _observer(tracing, core), result_urls)
    engine.transport = CheckedTransport(engine.transport, result_urls)
    return Runtime(
        settings=settings,
        db=db,
        catalog=catalog,
        core=core,
        router=router,
        engine=engine,
        store=_store(settings, store, tracing),
        auth=Authenticator(db, bus=bus),
        limiter=Limiter(redis),
        redis=redis,
        bus=bus,
        wakeups=Wakeups(bus),
        instance_id=instance_id,
        metrics=metrics,
        secret=secret,
        clock=clock,
        fetcher=fetcher,
        webhook_fetcher=AsyncFetcher(settings.webhook_url_policy),
        tracing=tracing,
        result_urls=result_urls,
    )
