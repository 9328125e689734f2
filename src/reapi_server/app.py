"""`create_app()`: the FastAPI application of the gateway.

The API (/v1, health, metrics) first; the web half (`web`) mounted after it at "/", so that
its cookies, CSRF checks and security headers never reach the API. Building it migrates the
database (unless told not to) and resolves the fleet's secret. Start-up starts the video poller,
the sweeper, the renewal of running requests' credit holds, the retention job, the mail outbox,
the low-balance alerts' pass, identity housekeeping, the writes of when each key was last
used and the webhook sender in this process; several processes may run them against one database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI

from reapi import __version__
from reapi.catalog import Catalog
from reapi.core import AsyncFetcher, HealthProber, ProbeConfig
from reapi.router import RouterConfig

from .alerts.watch import run_alert_watch
from .api_docs import add_docs_page
from .api_keys.last_used import run_last_used
from .billing.webhook import router as billing_webhook_router
from .config import Settings
from .credits.pending import release_before_exit, run_pending_releases
from .credits.renewal import run_hold_renewal
from .email.factory import build_sender
from .email.outbox import run_outbox
from .exit_signals import on_exit_signal
from .fleet_secret import resolve_blocking
from .identity.housekeeping import run_housekeeping
from .identity.sessions import SessionPolicy
from .jobs.lease import hand_back_leases
from .jobs.poller import JobPoller
from .jobs.sweeper import run_checkpointer, run_sweeper
from .json_api.errors import install_error_handlers
from .mirror import LocalDiskStore, ObjectStore
from .observability.entry import EnteredAtAccess
from .observability.health import router as health_router
from .observability.logging import configure_logging
from .observability.loop_errors import loop_errors_by_type
from .observability.middleware import AccessMiddleware
from .observability.scrape import MetricsListener, MetricsRoute
from .openai_api.hot_routes import HotRoutes
from .openai_api.router import V1_ROUTERS
from .own_host import OwnHost
from .retention.service import run_retention
from .runtime import Runtime, build_runtime
from .web.mount import mount_web
from .webhooks.sender import WebhookSender, hand_back_deliveries

if TYPE_CHECKING:  # OpenTelemetry is imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["create_app"]

log = logging.getLogger("reapi_server")

#: At shutdown, the longest the cancelled background tasks are waited for.
_STOP_SECONDS = 10.0


def create_app(
    settings: Settings | None = None,
    *,
    catalog: Catalog | None = None,
    http_client: httpx.AsyncClient | None = None,
    store: ObjectStore | None = None,
    router_config: RouterConfig | None = None,
    clock: Callable[[], float] | None = None,
    migrate: bool = True,
    fetcher: AsyncFetcher | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """`span_exporter`: with tracing on, where spans go instead of OTLP/HTTP (tests)."""
    settings = settings or Settings()
    extra = {"clock": clock} if clock is not None else {}
    # Migrates first when asked: the secret lives in the database.
    secret = resolve_blocking(settings, migrate=migrate)
    rt = build_runtime(
        settings,
        catalog=catalog,
        http_client=http_client,
        store=store,
        router_config=router_config,
        fetcher=fetcher,
        secret=secret,
        span_exporter=span_exporter,
        **extra,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Plain tasks rather than a task group: the lifespan may be entered and left from
        # different tasks (test harnesses do), which a cancel scope does not allow.
        tasks: list[asyncio.Task[None]] = []
        if isinstance(rt.store, LocalDiskStore):
            await asyncio.to_thread(rt.store.prepare)  # its folders: none made per request
        sender = build_sender(settings)
        if settings.run_background_tasks:
            tasks.append(asyncio.create_task(JobPoller(rt).run_forever()))
            tasks.append(asyncio.create_task(run_sweeper(rt)))
            tasks.append(asyncio.create_task(run_hold_renewal(rt)))
            tasks.append(asyncio.create_task(run_pending_releases(rt.pending_releases)))
            tasks.append(asyncio.create_task(run_retention(rt)))
            if rt.billing.webhook_enabled and rt.billing.api is not None:
                tasks.append(asyncio.create_task(rt.billing.run_retries()))
            if rt.billing.enabled:
                tasks.append(asyncio.create_task(rt.auto_top_up.run()))
            tasks.append(asyncio.create_task(WebhookSender(rt).run_forever()))
            tasks.append(asyncio.create_task(run_last_used(rt.db, rt.auth.usage)))
            if rt.db.dialect == "sqlite":
                tasks.append(asyncio.create_task(run_checkpointer(rt)))
            interval = settings.email_send_interval
            tasks.append(asyncio.create_task(run_outbox(rt.db, sender, rt.now, interval=interval)))
            tasks.append(
                asyncio.create_task(run_alert_watch(rt.alerts, interval=settings.alert_interval))
            )
            tasks.append(
                asyncio.create_task(
                    run_housekeeping(
                        rt.db,
                        SessionPolicy.from_settings(settings),
                        rt.now,
                        interval=settings.retention_interval,
                    )
                )
            )
        if settings.run_background_tasks and settings.health_probes:
            config = ProbeConfig(
                interval=settings.health_probe_interval, timeout=settings.health_probe_timeout
            )
            prober = HealthProber(rt.core, rt.engine, config, on_probe=rt.metrics.record_probe)
            tasks.append(asyncio.create_task(prober.run()))
        if rt.redis is not None:
            tasks.append(asyncio.create_task(rt.redis.watch()))
        if rt.bus is not None:
            tasks.append(asyncio.create_task(rt.bus.run()))
        log.info("gateway ready", extra={"code": f"providers={len(rt.core.connections)}"})
        # Streams of events end when the drain begins, not when their lifetime does.
        forget_signals = on_exit_signal(rt.job_changes.close, settings.drain_delay_seconds)
        try:
            with loop_errors_by_type():
                yield
        finally:
            forget_signals()
            rt.job_changes.close()
            for task in tasks:
                task.cancel()
            # Side by side, within the one bound: the requests cut at the end of the drain
            # give their holds back while the background tasks stop.
            await asyncio.gather(
                release_before_exit(
                    rt.live_holds,
                    rt.pending_releases,
                    _STOP_SECONDS,
                    also=(rt.idempotency_claims.until_empty,),  # a retry with the key runs
                ),
                _stopped(tasks),
            )
            await rt.alerts.settle()  # the crossings requests saw: written before the end
            await hand_back_leases(rt)
            await hand_back_deliveries(rt)
            await sender.aclose()
            await rt.aclose()

    app = EnteredAtAccess(
        title="reapi gateway",
        version=__version__,
        summary="OpenAI-compatible image and video API with failover and zero retention.",
        lifespan=lifespan,
        docs_url=None,  # our own page (`api_docs`), when `openapi_docs`
        openapi_url="/openapi.json" if settings.openapi_docs else None,
        redoc_url=None,
    )
    app.state.runtime = rt
    install_error_handlers(app)
    if settings.openapi_docs:
        add_docs_page(app, openapi_url="/openapi.json")
    for router in V1_ROUTERS:
        app.include_router(router)
    app.include_router(health_router)
    app.include_router(billing_webhook_router)
    if settings.metrics_token is not None:
        app.router.routes.append(MetricsRoute(rt.metrics, settings.metrics_token))
    mount_web(app, rt)  # last: it takes every path the API does not have; built when first used
    if rt.tracing is not None:
        from .observability.tracing.middleware import TracingMiddleware

        # Inside the access middleware (added later, so outer): its request id, in the span.
        app.add_middleware(TracingMiddleware, tracing=rt.tracing)
    metrics_address = settings.metrics_address
    app.add_middleware(
        AccessMiddleware,
        metrics=rt.metrics,
        listener=MetricsListener(
            metrics=rt.metrics, port=metrics_address[1] if metrics_address is not None else None
        ),
        own_host=OwnHost(
            public_base_url=settings.public_base_url, listen=(settings.host, settings.port)
        ),
        hot_routes=HotRoutes(
            app, (route for router in V1_ROUTERS for route in router.routes), tracing=rt.tracing
        ),
    )
    return app


async def _stopped(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the cancelled background tasks, within `_STOP_SECONDS`: one that does not
    stop (a dependency that never answers its close) must not keep the process from ending."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=_STOP_SECONDS)
    for task in done:  # retrieved, as gathering them did: a task's end is not an error here
        if not task.cancelled():
            task.exception()
    if pending:
        names = (getattr(task.get_coro(), "__qualname__", task.get_name()) for task in pending)
        log.warning("background tasks did not stop", extra={"code": ",".join(sorted(names))})


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def app_from_environment() -> FastAPI:
    """The uvicorn factory for `reapi-server serve --workers N` (settings from REAPI_*).

    Each worker is a fresh process: it sets up its own logging; the parent already migrated."""
    from .serving import freeze_heap  # serving imports this module

    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = create_app(settings, migrate=False)
    freeze_heap()
    return app
