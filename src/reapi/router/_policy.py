"""Which failures move a request to the next route, and how long they bench the route."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._exceptions import (
    APIConnectionError,
    APIResponseError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ReapiError,
)

__all__ = ["BreakerPolicy", "FailureVerdict", "RouterConfig", "judge"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    #: Server errors in a row before a route opens. Unreachable routes open at once.
    failure_threshold: int = 3
    #: How long an open route is skipped before one probe request may try it again.
    open_seconds: float = 30.0
    #: Bench time after a 429 without Retry-After.
    rate_limit_seconds: float = 5.0
    #: Bench time after quota, authentication or permission failures (a human must act).
    account_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Deadlines and failover behaviour. The defaults keep failover well under a second."""

    #: Seconds from sending a request to its response headers (per attempt).
    first_byte_timeout: float = 0.8
    #: Seconds to read a whole JSON response body once headers arrived.
    body_timeout: float = 30.0
    #: Seconds to read a binary result (image or video download).
    download_timeout: float = 300.0
    #: Start the next route after this many seconds without an answer (None: no hedging).
    hedge_after: float | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    failover: bool
    #: None: the route's health is not in question (e.g. the prompt was blocked).
    open_for: float | None
    threshold: int = 1


def judge(error: ReapiError, policy: BreakerPolicy) -> FailureVerdict:
    """Pure: map an attempt's error to failover + breaker effect."""
    if isinstance(error, ContentPolicyError | InvalidRequestError | BadRequestError):
        return FailureVerdict(failover=False, open_for=None)
    if isinstance(error, RateLimitError):
        wait = error.retry_after if error.retry_after else policy.rate_limit_seconds
        return FailureVerdict(failover=True, open_for=wait)
    if isinstance(error, QuotaExceededError | AuthenticationError | PermissionDeniedError):
        return FailureVerdict(failover=True, open_for=policy.account_seconds)
    if isinstance(error, APIConnectionError):
        return FailureVerdict(failover=True, open_for=policy.open_seconds)
    if isinstance(error, APIResponseError | NotFoundError | JobFailedError):
        return FailureVerdict(True, policy.open_seconds, policy.failure_threshold)
    if error.retryable:
        return FailureVerdict(True, policy.open_seconds, policy.failure_threshold)
    return FailureVerdict(failover=False, open_for=None)
