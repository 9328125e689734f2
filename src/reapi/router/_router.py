"""The router decides; it does no I/O. The engine asks it which routes to try and reports back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from .._exceptions import ReapiError, RouteRefusedError
from ..catalog import Route
from ._breaker import BreakerState, BreakerStore, InMemoryBreakerStore
from ._latency import RecentLatencies
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
        #: How long each route's successful attempts took lately (for hedging delays).
        self.latencies = RecentLatencies()
        self._clock = clock
        #: When each route was last handed to a request (monotonic): health probes watch only
        #: routes with traffic.
        self._attempted: dict[str, float] = {}
        #: Routes whose breaker a health probe opened (not traffic), and when: a probe may close
        #: them, and an attempt that began before then cannot.
        self._opened_by_probe: dict[str, float] = {}

    def candidates(self, routes: Sequence[Route]) -> Iterator[Route]:
        """Routes to try, in order, skipping open ones. Lazy: a half-open route is claimed as
        the probe only when the caller actually reaches it.

        When every breaker is open the first route is tried anyway: failing fast with no attempt
        would turn one bad minute upstream into a self-inflicted outage.
        """
        yielded = False
        for route in routes:
            now, key = self._clock(), route.key
            if self.breakers.allow(key, now):
                yielded = True
                self._attempted[key] = now
                yield route
        if not yielded and routes:
            self._attempted[routes[0].key] = self._clock()
            yield routes[0]

    def first_byte_timeout(self, route: Route) -> float:
        return route.first_byte_timeout or self.config.first_byte_timeout

    def record_success(self, route: Route, seconds: float | None = None) -> None:
        """`seconds`: how long the successful attempt took, when it was timed. An attempt that
        began before a health probe found the route down (an answer already on its way) says
        nothing about the route now and leaves its breaker open."""
        now, key = self._clock(), route.key  # (`key` is made anew on each read)
        self.outcomes.record(key, failed=False, now=now)
        if seconds is not None:
            self.latencies.record(key, seconds)
            opened = self._opened_by_probe.get(key)
            if opened is not None and now - seconds < opened:
                return
        self._opened_by_probe.pop(key, None)
        self.breakers.record_success(key)

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
            # Traffic found it failing: only traffic (a half-open request) may close it now.
            self._opened_by_probe.pop(route.key, None)
            self.breakers.record_failure(
                route.key, self._clock(), open_for=verdict.open_for, threshold=verdict.threshold
            )
        return verdict.failover

    def release(self, route: Route) -> None:
        self.breakers.release(route.key)

    def state(self, route: Route) -> BreakerState:
        return self.breakers.state(route.key, self._clock())

    # -- hedging ----------------------------------------------------------------------------
    def hedges(self, model: str | None, routes: Sequence[Route]) -> bool:
        """Whether an image request for `model` over `routes` may be hedged at all."""
        if model is None or len(routes) < 2:
            return False
        if self.config.hedge_after is not None:
            return True
        allow = self.config.hedge.allow
        return model in allow or any(route.key in allow for route in routes)

    def hedge_delay(self, model: str | None, route: Route) -> float | None:
        """Seconds to wait on `route` before the next route starts too; None: do not."""
        if self.config.hedge_after is not None:
            return self.config.hedge_after
        policy = self.config.hedge
        if model not in policy.allow and route.key not in policy.allow:
            return None
        usual = self.latencies.quantile(route.key, policy.quantile, min_samples=policy.min_samples)
        return None if usual is None else max(usual, policy.floor)

    # -- health probes -----------------------------------------------------------------------
    def attempted_within(self, route: Route, seconds: float) -> bool:
        """Whether a request was handed this route in the last `seconds`."""
        last = self._attempted.get(route.key)
        return last is not None and self._clock() - last <= seconds

    def probe_failed(self, route: Route) -> bool:
        """A health probe found the route's provider down: open (or keep open) its breaker for
        the open period, so requests skip it instead of waiting out its deadline, and its
        half-open trial is not a caller's request while probes still fail. True when this
        opened a breaker that was not open."""
        was_open = self.state(route) is BreakerState.OPEN
        self.breakers.record_failure(
            route.key, self._clock(), open_for=self.config.breaker.open_seconds, threshold=1
        )
        if not was_open:
            self._opened_by_probe[route.key] = self._clock()
        return not was_open

    def probe_succeeded(self, route: Route) -> bool:
        """A health probe found the provider answering. A breaker a probe opened closes (the
        outage the probe saw is over); one that traffic opened stays as it is, since a cheap
        call answering does not show that generation works. True when a breaker closed."""
        if route.key not in self._opened_by_probe:
            return False
        del self._opened_by_probe[route.key]
        self.breakers.record_success(route.key)
        return True

    def recent(self, route: Route) -> tuple[int, int]:
        """(attempts, failures) on the route in the last five minutes: a failure is what
        counts against its breaker (a blocked prompt is the route working)."""
        return self.outcomes.totals(route.key, self._clock())
