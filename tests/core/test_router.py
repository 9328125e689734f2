import pytest

from reapi import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    BadRequestError,
    ContentPolicyError,
    InternalServerError,
    QuotaExceededError,
    RateLimitError,
    RouteRefusedError,
)
from reapi.catalog import Route
from reapi.router import BreakerPolicy, BreakerState, Router, RouterConfig, judge

A = Route(provider="a", upstream_model="m")
B = Route(provider="b", upstream_model="m")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("error", "failover", "benches"),
    [
        (APIConnectionError("refused"), True, True),
        (APITimeoutError("hang"), True, True),
        (InternalServerError("500"), True, True),
        (APIResponseError("truncated"), True, True),
        (RateLimitError("429", retry_after=3), True, True),
        (QuotaExceededError("quota"), True, True),
        (ContentPolicyError("blocked"), False, False),
        (BadRequestError("invalid"), False, False),
    ],
)
def test_failure_classification(error, failover, benches):
    verdict = judge(error, BreakerPolicy())
    assert verdict.failover is failover
    assert (verdict.open_for is not None) is benches


def test_rate_limit_benches_for_retry_after():
    assert judge(RateLimitError("r", retry_after=7), BreakerPolicy()).open_for == 7
    assert judge(RateLimitError("r"), BreakerPolicy(rate_limit_seconds=4)).open_for == 4


def test_unreachable_route_opens_at_once_then_half_open_probe():
    clock = Clock()
    router = Router(RouterConfig(breaker=BreakerPolicy(open_seconds=10)), clock=clock)
    assert router.record_failure(A, APIConnectionError("refused"))
    assert router.state(A) is BreakerState.OPEN
    assert list(router.candidates([A, B])) == [B]
    clock.now += 10.5
    assert router.state(A) is BreakerState.HALF_OPEN
    first = router.candidates([A, B])
    assert next(first) == A  # this caller holds the probe
    assert list(router.candidates([A, B])) == [B]  # nobody else probes meanwhile
    router.record_success(A)
    assert router.state(A) is BreakerState.CLOSED


def test_failed_probe_reopens():
    clock = Clock()
    router = Router(RouterConfig(breaker=BreakerPolicy(open_seconds=10)), clock=clock)
    router.record_failure(A, APITimeoutError("hang"))
    clock.now += 11
    assert next(router.candidates([A])) == A
    router.record_failure(A, APITimeoutError("hang"))
    assert router.state(A) is BreakerState.OPEN


def test_server_errors_open_after_threshold():
    router = Router(RouterConfig(breaker=BreakerPolicy(failure_threshold=3)), clock=Clock())
    for _ in range(2):
        router.record_failure(A, InternalServerError("500"))
        assert router.state(A) is BreakerState.CLOSED
    router.record_failure(A, InternalServerError("500"))
    assert router.state(A) is BreakerState.OPEN


def test_content_block_counts_as_healthy_and_releases_probe():
    clock = Clock()
    router = Router(RouterConfig(breaker=BreakerPolicy(open_seconds=5)), clock=clock)
    router.record_failure(A, APIConnectionError("x"))
    clock.now += 6
    assert next(router.candidates([A])) == A
    assert not router.record_failure(A, ContentPolicyError("blocked"))
    assert router.state(A) is BreakerState.CLOSED


def test_all_open_still_tries_the_first_route():
    router = Router(clock=Clock())
    router.record_failure(A, APIConnectionError("x"))
    router.record_failure(B, APIConnectionError("x"))
    assert list(router.candidates([A, B])) == [A]


def test_release_frees_the_probe_slot():
    clock = Clock()
    router = Router(RouterConfig(breaker=BreakerPolicy(open_seconds=1)), clock=clock)
    router.record_failure(A, APIConnectionError("x"))
    clock.now += 2
    assert next(router.candidates([A, B])) == A
    router.release(A)
    assert next(router.candidates([A, B])) == A


def test_recent_outcomes_count_attempts_and_failures_over_five_minutes():
    clock = Clock()
    router = Router(clock=clock)
    assert router.recent(A) == (0, 0)
    router.record_success(A)
    router.record_failure(A, InternalServerError("500"))
    router.record_failure(A, ContentPolicyError("blocked"))  # the route answered: not its fault
    router.record_failure(A, RouteRefusedError("not here"))  # nothing sent: not counted
    router.release(A)  # cancelled: not counted
    assert router.recent(A) == (3, 1)
    assert router.recent(B) == (0, 0)
    clock.now += 200
    router.record_failure(A, APIConnectionError("refused"))
    assert router.recent(A) == (4, 2)
    clock.now += 120  # the first three are now more than five minutes old
    assert router.recent(A) == (1, 1)
    clock.now += 300
    assert router.recent(A) == (0, 0)


def test_recent_outcomes_keep_a_bounded_memory():
    clock = Clock()
    router = Router(clock=clock)
    for second in range(10_000):
        clock.now = 1000.0 + second
        router.record_success(A)
    assert router.recent(A) == (300, 0)  # in ten-second steps
    assert len(router.outcomes._buckets[A.key]) <= 31
