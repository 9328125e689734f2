"""Each served route's health as this process's router sees it: its breaker (closed, open,
half-open) and its attempts and failures of the last five minutes. Counts and states only:
nothing about any request.

Breakers live in each server process's memory: with several workers, the page shows the one
that answered."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from reapi.catalog import Catalog
from reapi.router import BreakerState, Router

from ..offering import servable, served_routes

__all__ = ["HostHealth", "ModelHealth", "RouteHealth", "by_host", "overall", "route_health"]

#: Worst first: a host is as bad as its worst route.
_SEVERITY = {BreakerState.OPEN: 2, BreakerState.HALF_OPEN: 1, BreakerState.CLOSED: 0}
_STATE_WORDS = {
    BreakerState.CLOSED: "Operational",
    BreakerState.HALF_OPEN: "Recovering",
    BreakerState.OPEN: "Open",
}


@dataclass(frozen=True, slots=True)
class RouteHealth:
    key: str
    provider: str
    upstream_model: str
    state: BreakerState
    attempts: int
    failures: int

    @property
    def state_words(self) -> str:
        return _STATE_WORDS[self.state]

    @property
    def healthy(self) -> bool:
        return self.state is BreakerState.CLOSED

    @property
    def error_rate(self) -> float | None:
        """Failures per attempt in the last five minutes; None with no attempt."""
        return self.failures / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True)
class ModelHealth:
    id: str
    name: str
    kind: str
    routes: tuple[RouteHealth, ...]

    @property
    def available(self) -> bool:
        """Some route takes requests (a model with every breaker open still tries its first
        route, but expect failures)."""
        return any(route.state is not BreakerState.OPEN for route in self.routes)

    @property
    def degraded(self) -> bool:
        return not all(route.healthy for route in self.routes)


@dataclass(frozen=True, slots=True)
class HostHealth:
    provider: str
    #: The worst state among the host's routes.
    state: BreakerState
    routes: int
    attempts: int
    failures: int

    @property
    def state_words(self) -> str:
        return _STATE_WORDS[self.state]


def by_host(models: list[ModelHealth]) -> list[HostHealth]:
    """One line per upstream host: its routes' worst state and their counts together."""
    routes: dict[str, list[RouteHealth]] = {}
    for model in models:
        for route in model.routes:
            routes.setdefault(route.provider, []).append(route)
    return [
        HostHealth(
            provider=provider,
            state=max((r.state for r in found), key=_SEVERITY.__getitem__),
            routes=len(found),
            attempts=sum(r.attempts for r in found),
            failures=sum(r.failures for r in found),
        )
        for provider, found in sorted(routes.items())
    ]


def route_health(router: Router, catalog: Catalog, providers: Container[str]) -> list[ModelHealth]:
    found = []
    for spec in servable(catalog, providers).values():
        routes = []
        for route in served_routes(spec, providers):
            attempts, failures = router.recent(route)
            routes.append(
                RouteHealth(
                    key=route.key,
                    provider=route.provider,
                    upstream_model=route.upstream_model,
                    state=router.state(route),
                    attempts=attempts,
                    failures=failures,
                )
            )
        found.append(ModelHealth(spec.id, spec.name, spec.kind, tuple(routes)))
    return found


def overall(models: list[ModelHealth]) -> str:
    """operational | degraded (some hosts fail, requests fail over) | outage (a model has no
    working host)."""
    if any(not model.available for model in models):
        return "outage"
    if any(model.degraded for model in models):
        return "degraded"
    return "operational"
