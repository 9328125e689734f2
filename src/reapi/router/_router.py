"""The router decides; it does no I/O. The engine asks it which routes to try and reports back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from .._exceptions import ReapiError, RouteRefusedError
from ..catalog import Route
from ._breaker import BreakerState, BreakerStore, InMemoryBreakerStore
from ._policy import RouterConfig, judge
from ._recent import RecentOutcomes

__all__ = ["Router"]


class Router:
    def __init__(
        self,
        config: RouterConfig | None = None,
        breakers: BreakerStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or RouterConfig()
        self.breakers: BreakerStore = breakers or InMemoryBreakerStore()
        #: Attempts and failures per route lately (this process's), for status pages.
        self.outcomes = RecentOutcomes()
        self._clock = clock

    def candidates(self, routes: Sequence[Route]) -> Iterator[Route]:
        """Routes to try, in order, skipping open ones. Lazy: a half-open route is claimed as
        the probe only when the caller actually reaches it.

        When every breaker is open the first route is tried anyway: failing fast with no attempt
        would turn one bad minute upstream into a self-inflicted outage.
        """
        yielded = False
        for route in routes:
            if self.breakers.allow(route.key, self._clock()):
                yielded = True
                yield route
        if not yielded and routes:
            yield routes[0]

    def first_byte_timeout(self, route: Route) -> float:
        return route.first_byte_timeout or self.config.first_byte_timeout

    def record_success(self, route: Route) -> None:
        self.breakers.record_success(route.key)
        self.outcomes.record(route.key, failed=False, now=self._clock())

    def record_failure(self, route: Route, error: ReapiError) -> bool:
        """Update the route's breaker; return True when the request should fail over."""
        if isinstance(error, RouteRefusedError):
            # Nothing was sent, so nothing was learned about the route's health.
            self.breakers.release(route.key)
            return True
        verdict = judge(error, self.config.breaker)
        self.outcomes.record(route.key, failed=verdict.open_for is not None, now=self._clock())
        if verdict.open_for is None:
            # The route answered sensibly (e.g. a content block): it is healthy.
            self.breakers.record_success(route.key)
        else:
            self.breakers.record_failure(
                route.key, self._clock(), open_for=verdict.open_for, threshold=verdict.threshold
            )
        return verdict.failover

    def release(self, route: Route) -> None:
        self.breakers.release(route.key)

    def state(self, route: Route) -> BreakerState:
        return self.breakers.state(route.key, self._clock())

    def recent(self, route: Route) -> tuple[int, int]:
        """(attempts, failures) on the route in the last five minutes: a failure is what
        counts against its breaker (a blocked prompt is the route working)."""
        return self.outcomes.totals(route.key, self._clock())
