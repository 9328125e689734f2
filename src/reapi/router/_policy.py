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

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_DOWNLOAD_BYTES",
    "BreakerPolicy",
    "FailureVerdict",
    "HedgePolicy",
    "RouterConfig",
    "judge",
]


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
class HedgePolicy:
    """Hedging where the operator allows its cost: an image request on an allowed model or
    route that has not been answered after the route's usual time (a quantile of its recent
    successes, never less than `floor`) is sent to the next route as well; the first success
    wins and the other attempt is cancelled, its connection closed. The upstream may bill both
    (a request it had already started), the caller pays for one result. Off by default."""

    #: Model ids and route keys (`provider/upstream_model`) whose image requests may be hedged.
    allow: frozenset[str] = frozenset()
    #: The quantile of a route's recent successful attempts after which the next route starts.
    quantile: float = 0.95
    #: Never sooner than this many seconds after the route was tried.
    floor: float = 1.0
    #: Successes a route needs before its quantile counts; until then it is not hedged.
    min_samples: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError("quantile must be in (0, 1]")
        if self.floor < 0 or self.min_samples < 1:
            raise ValueError("floor must be >= 0 and min_samples >= 1")


#: Defaults of `RouterConfig.max_answer_bytes` and `max_download_bytes`: several times the
#: largest answer a provider sends (ten 4K images as base64; a long video).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Deadlines and failover behaviour. The defaults keep failover well under a second."""

    #: Seconds from sending a request to its response headers (per attempt).
    first_byte_timeout: float = 0.8
    #: Seconds to read a whole JSON response body once headers arrived.
    body_timeout: float = 30.0
    #: Seconds to read a binary result (image or video download).
    download_timeout: float = 300.0
    #: Bytes of a JSON answer read at most: past it the answer is the provider's fault
    #: (`APIResponseError`, failover), never a gateway's memory filled by one upstream.
    max_answer_bytes: int = MAX_ANSWER_BYTES
    #: Bytes of a binary result read whole at most (a video mirrored to storage is streamed).
    max_download_bytes: int = MAX_DOWNLOAD_BYTES
    #: Start the next route after this many seconds without an answer, for every image request
    #: (None: only where `hedge` allows, after the route's observed latency).
    hedge_after: float | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    hedge: HedgePolicy = field(default_factory=HedgePolicy)


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
