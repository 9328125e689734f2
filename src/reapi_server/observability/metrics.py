"""Prometheus metrics. Labels are route templates, methods, status codes, provider names and
stable error codes: never a path with ids, a body, a prompt or a key.

With several worker processes (`serve --workers N`) each counts in files of its own under
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set up by `serving`), and a
scrape, whichever worker answers it, adds up every worker's files. What is read at scrape time
from memory (breaker states) is the answering worker's view.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from reapi.catalog import Catalog
from reapi.core import HEDGE_LOST, ProbeReport
from reapi.router import BreakerState, Router

__all__ = ["Children", "Metrics"]

K = TypeVar("K")
V = TypeVar("V")

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


class _KnownLabels:
    """`labels(...)` that finds an existing child by a dict lookup (and, below, `inc` and
    `observe` that skip checks a child passes). prometheus-client checks and converts the
    values and takes a lock on every call (about 2 us; the hot path skips even this call, with
    `Children`); a child it has already made, under the same string values, is returned as it
    would have returned it. Anything else (a first time, keyword or non-string values) goes to
    prometheus-client as before."""

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Any:
        if not labelkwargs:
            children: dict[tuple[str, ...], Any] = getattr(self, "_metrics", {})
            child = children.get(labelvalues)
            if child is not None:
                return child
        return super().labels(*labelvalues, **labelkwargs)  # type: ignore[misc]


class Counter(_KnownLabels, prometheus_client.Counter):
    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        """prometheus-client's `inc` for a labelled metric's child (the hot path: three of a
        request's six counts), without its two checks' calls: the child has its values (it
        came from `labels`). Anything else, or an exemplar, goes to prometheus-client."""
        if self._labelvalues and amount >= 0 and exemplar is None:
            self._value.inc(amount)
        else:
            super().inc(amount, exemplar)


class Histogram(_KnownLabels, prometheus_client.Histogram):
    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        """prometheus-client's `observe` for a labelled metric's child, its bucket found by
        bisection instead of a Python loop over the bounds (each request's latency passes up
        to 16). The same bucket: the first whose bound is at least `amount` (the last is
        +Inf). A NaN, which falls in no bucket, or an exemplar goes to prometheus-client."""
        if self._labelvalues and amount == amount and exemplar is None:
            self._sum.inc(amount)
            self._buckets[bisect_left(self._upper_bounds, amount)].inc(1)
        else:
            super().observe(amount, exemplar)


class Children(dict[K, V], Generic[K, V]):
    """A labelled metric's children by their label values, each made by `make` (the metric's
    `labels`) the first time it is asked for, then found by the dict's own lookup in C: no
    Python call per count on the hot path (`labels` is one, about 19 bytecodes, six times a
    request). A child is still made only when first counted, so a series appears in a scrape
    when it did before. Two threads missing the same key at once both get the one child
    prometheus-client keeps for those values."""

    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> V:
        child = self[key] = self._make(key)
        return child


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
        #: The HTTP series by (method, route template, status): (requests, latency).
        self.http: Children[tuple[str, str, int], tuple[Any, Any]] = Children(
            lambda key: (
                self.requests.labels(key[0], key[1], str(key[2])),
                self.latency.labels(key[0], key[1]),
            )
        )
        #: Upstream attempts by (provider, code).
        self.attempts_by: Children[tuple[str, str], Any] = Children(
            lambda key: self.upstream_attempts.labels(*key)
        )
        self.failovers = Counter(
            "reapi_failovers",
            "Requests that moved to another route after a failed attempt.",
            ["model"],
            registry=self.registry,
        )
        self.hedged = Counter(
            "reapi_hedged_requests",
            "Image requests answered while a hedged attempt on another route still ran (it was "
            "cancelled; its upstream may bill it), by model.",
            ["model"],
            registry=self.registry,
        )
        self.credits = Counter(
            "reapi_credits",
            "Credit units moved, by movement (reserved, charged, released).",
            ["movement"],
            registry=self.registry,
        )
        #: Credit units by movement: `credits_moved["reserved"].inc(cost)`.
        self.credits_moved: Children[str, Any] = Children(self.credits.labels)
        self.video_jobs = Counter(
            "reapi_video_jobs_finished",
            "Video jobs that reached a final state.",
            ["status"],
            registry=self.registry,
        )

        self.probes = Counter(
            "reapi_health_probes",
            "Health probes of upstream providers, by provider and verdict (up, down, unclear).",
            ["provider", "verdict"],
            registry=self.registry,
        )
        self.probe_latency = Histogram(
            "reapi_health_probe_duration_seconds",
            "Time a health probe took (a probe with no answer counts its timeout).",
            ["provider"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )
        self.probe_breakers = Counter(
            "reapi_health_probe_breaker_changes",
            "Route breakers a health probe opened or closed, by provider and change.",
            ["provider", "change"],
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
        self.webhook_attempts = Counter(
            "reapi_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, failed, gone: 410).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "reapi_webhook_deliveries",
            "Webhook deliveries that ended, by outcome (delivered; failed: retries ran out; "
            "gone: the receiver answered 410).",
            ["outcome"],
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

    def record_probe(self, report: ProbeReport) -> None:
        self.probes.labels(report.provider, report.verdict.value).inc()
        self.probe_latency.labels(report.provider).observe(report.seconds)
        if report.opened:
            self.probe_breakers.labels(report.provider, "opened").inc(len(report.opened))
        if report.closed:
            self.probe_breakers.labels(report.provider, "closed").inc(len(report.closed))

    def record_attempts(self, model: str, attempts: Iterable[tuple[str, str]]) -> None:
        failed = hedged = False
        for provider, code in attempts:
            self.attempts_by[provider, code].inc()
            hedged = hedged or code == HEDGE_LOST
            failed = failed or code not in ("ok", HEDGE_LOST)
        if failed:
            self.failovers.labels(model).inc()
        if hedged:
            self.hedged.labels(model).inc()
