"""Failover decisions: breakers, failure classification, deadlines, hedging settings."""

from ._breaker import BreakerState, BreakerStore, InMemoryBreakerStore
from ._latency import RecentLatencies
from ._policy import (
    MAX_ANSWER_BYTES,
    MAX_DOWNLOAD_BYTES,
    BreakerPolicy,
    FailureVerdict,
    HedgePolicy,
    RouterConfig,
    judge,
)
from ._router import Router

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_DOWNLOAD_BYTES",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStore",
    "FailureVerdict",
    "HedgePolicy",
    "InMemoryBreakerStore",
    "RecentLatencies",
    "Router",
    "RouterConfig",
    "judge",
]
