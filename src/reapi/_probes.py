"""Active health probes: a cheap authenticated call per provider route, every few seconds while
the route has traffic or an open breaker, whose results feed the router's breakers.

Traffic alone learns of an outage from a request that waits out its route's deadline, which on a
slow-by-nature route (an image API that answers only when the image is done) is a minute or
more, and every later request in flight waits as long. A probe asks something that answers in
milliseconds (reading a model, the account, a page of tasks, see `Adapter.probe`), so a provider
that stops answering is found within seconds and its routes' breakers open: new requests go to
the next route at once and only the requests already in flight wait.

A probe's verdict is `down` (no answer within `timeout`, a refused or reset connection, a 5xx),
`up` (2xx or 3xx) or `unclear` (any other status: a compatible upstream without the call, a rate
limit on reads). `failures_to_open` downs in a row open the breakers of the routes it serves; each
later down keeps them open. An `up` closes only the breakers a probe opened: a breaker that traffic
opened is left to its half-open trial, since a model listing that answers does not show that
generation works. Routes whose probe is the same call (one account listing for every route of a
provider) share one probe.

A probe carries the provider's key and nothing of any caller: it is built from the route alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import anyio

from ._engine import AsyncEngine
from ._exceptions import ReapiError
from ._local import LocalCore
from .catalog import Route
from .providers import UpstreamRequest
from .router import BreakerState, Router

__all__ = ["HealthProber", "ProbeConfig", "ProbeReport", "ProbeTarget", "ProbeVerdict"]

log = logging.getLogger("reapi")


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    #: Seconds between two probes of one target while it is watched.
    interval: float = 5.0
    #: Seconds a probe may take before it counts as down.
    timeout: float = 2.0
    #: Probes in a row that find a target down before its routes' breakers open (one slow
    #: answer is not an outage). After a down, the next probe comes after `recheck`.
    failures_to_open: int = 2
    recheck: float = 1.0
    #: A route is watched while a request used it this recently, or while its breaker is open.
    traffic_window: float = 60.0


class ProbeVerdict(StrEnum):
    UP = "up"
    DOWN = "down"
    UNCLEAR = "unclear"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One probe call and the routes whose health it shows."""

    provider: str
    request: UpstreamRequest
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one probe found and did (metadata only), for metrics."""

    provider: str
    verdict: ProbeVerdict
    seconds: float
    #: Route keys whose breaker this probe opened, or closed.
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()


def probe_targets(core: LocalCore) -> list[ProbeTarget]:
    """Every catalog route with a key whose adapter has a probe, grouped by probe call."""
    grouped: dict[tuple[str, str, str], tuple[UpstreamRequest, list[Route]]] = {}
    seen: set[str] = set()
    for model in core.catalog.models.values():
        for route in model.routes:
            if route.key in seen or route.provider not in core.connections:
                continue
            seen.add(route.key)
            request = core.adapter(route).probe(route)
            if request is None:
                continue
            slot = grouped.setdefault((route.provider, request.method, request.url), (request, []))
            slot[1].append(route)
    return [
        ProbeTarget(provider, request, tuple(routes))
        for (provider, _, _), (request, routes) in grouped.items()
    ]


class HealthProber:
    """Runs the probes of one process (`run`) on its engine's connection pool and router."""

    def __init__(
        self,
        core: LocalCore,
        engine: AsyncEngine,
        config: ProbeConfig | None = None,
        *,
        on_probe: Callable[[ProbeReport], None] | None = None,
    ) -> None:
        self.config = config or ProbeConfig()
        self.engine = engine
        self.router: Router = engine.router
        self.targets = probe_targets(core)
        self._on_probe = on_probe
        self._downs: dict[tuple[str, str], int] = {}

    async def run(self) -> None:
        """Watch every target until cancelled."""
        async with anyio.create_task_group() as group:
            for target in self.targets:
                group.start_soon(self._watch, target)

    async def _watch(self, target: ProbeTarget) -> None:
        while True:
            pause = self.config.interval
            if self.watched(target):
                report = await self.check(target)
                if report.verdict is ProbeVerdict.DOWN:
                    pause = min(self.config.recheck, pause)
            await anyio.sleep(pause)

    def watched(self, target: ProbeTarget) -> bool:
        """Whether the target's routes have traffic, or an open breaker, now."""
        window = self.config.traffic_window
        return any(
            self.router.attempted_within(route, window)
            or self.router.state(route) is BreakerState.OPEN
            for route in target.routes
        )

    async def check(self, target: ProbeTarget) -> ProbeReport:
        """Probe once and apply the verdict to the target's routes."""
        started = time.perf_counter()
        verdict = await self._verdict(target)
        seconds = time.perf_counter() - started
        opened: list[str] = []
        closed: list[str] = []
        key = (target.provider, target.request.url)
        if verdict is ProbeVerdict.DOWN:
            self._downs[key] = self._downs.get(key, 0) + 1
            if self._downs[key] >= self.config.failures_to_open:
                opened = [r.key for r in target.routes if self.router.probe_failed(r)]
        elif verdict is ProbeVerdict.UP:
            self._downs.pop(key, None)
            closed = [r.key for r in target.routes if self.router.probe_succeeded(r)]
        report = ProbeReport(target.provider, verdict, seconds, tuple(opened), tuple(closed))
        if opened or closed:
            log.warning(
                "health probe of %s: %s; breakers opened %d, closed %d",
                target.provider,
                verdict.value,
                len(opened),
                len(closed),
            )
        if self._on_probe is not None:
            self._on_probe(report)
        return report

    async def _verdict(self, target: ProbeTarget) -> ProbeVerdict:
        timeout = self.config.timeout
        try:
            with anyio.fail_after(timeout):
                response = await self.engine.send(target.request, target.provider, timeout)
        except (ReapiError, TimeoutError):
            return ProbeVerdict.DOWN
        if response.status >= 500:
            return ProbeVerdict.DOWN
        return ProbeVerdict.UP if response.status < 400 else ProbeVerdict.UNCLEAR
