"""Failover decisions: breakers, failure classification, deadlines, hedging settings."""

from ._breaker import BreakerState, BreakerStore, InMemoryBreakerStore
from ._policy import BreakerPolicy, FailureVerdict, RouterConfig, judge
from ._router import Router

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "BreakerStore",
    "FailureVerdict",
    "InMemoryBreakerStore",
    "Router",
    "RouterConfig",
    "judge",
]
