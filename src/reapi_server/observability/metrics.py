"""Prometheus metrics. Labels are route templates, methods, status codes, provider names and
stable error codes: never a path with ids, a body, a prompt or a key.

With several worker processes (`serve --workers N`) each counts in files of its own under
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set up by `serving`), and a
scrape, whichever worker answers it, adds up every worker's files. What is read at scrape time
from memory (breaker states) is the answering worker's view.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from reapi.catalog import Catalog
from reapi.router import BreakerState, Router

__all__ = ["Metrics"]

_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class _BreakerCollector(Collector):
    """Breaker states read at scrape time from the router (0 closed, 1 half-open, 2 open)."""

    def __init__(self, router: Router, catalog: Catalog, providers: Iterable[str]) -> None:
        self._router = router
        self._routes = {
            route.key: route
            for model in catalog.models.values()
            for route in model.routes
            if route.provider in set(providers)
        }

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "reapi_breaker_state",
            "Circuit breaker state per upstream route (0 closed, 1 half-open, 2 open).",
            labels=["route"],
        )
        for key, route in sorted(self._routes.items()):
            family.add_metric([key], _STATE_VALUE[self._router.state(route)])
        yield family


#: prometheus-client's own variable: set, its metrics live in files in that directory.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Collectors read from this process's memory at scrape time.
        self._live: list[Collector] = []
        self.requests = Counter(
            "reapi_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reapi_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
                60,
            ),
        )
        self.upstream_attempts = Counter(
            "reapi_upstream_attempts",
            "Attempts on upstream routes, by provider and outcome code.",
            ["provider", "code"],
            registry=self.registry,
        )
        self.failovers = Counter(
            "reapi_failovers",
            "Requests that moved to another route after a failed attempt.",
            ["model"],
            registry=self.registry,
        )
        self.credits = Counter(
            "reapi_credits",
            "Credit units moved, by movement (reserved, charged, released).",
            ["movement"],
            registry=self.registry,
        )
        self.video_jobs = Counter(
            "reapi_video_jobs_finished",
            "Video jobs that reached a final state.",
            ["status"],
            registry=self.registry,
        )

        self.redis_up = Gauge(
            "reapi_redis_up",
            "1 while Redis answers, 0 while a process falls back to its own state.",
            registry=self.registry,
            multiprocess_mode="livemin",  # 0 when any live worker falls back
        )
        self.redis_fallbacks = Counter(
            "reapi_redis_fallbacks",
            "Uses of per-process state because Redis was down, by feature.",
            ["feature"],
            registry=self.registry,
        )

    def watch_breakers(self, router: Router, catalog: Catalog, providers: Iterable[str]) -> None:
        collector = _BreakerCollector(router, catalog, providers)
        self.registry.register(collector)
        self._live.append(collector)

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's counts in multiprocess mode."""
        directory = os.environ.get(MULTIPROCESS_ENV)
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        for collector in self._live:
            registry.register(collector)
        return generate_latest(registry)

    def record_attempts(self, model: str, attempts: Iterable[tuple[str, str]]) -> None:
        count = 0
        for provider, code in attempts:
            self.upstream_attempts.labels(provider, code).inc()
            count += 1
        if count > 1:
            self.failovers.labels(model).inc()
