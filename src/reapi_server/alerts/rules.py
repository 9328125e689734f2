"""The arithmetic of alerts, apart from any storage: where a key's alert lies, and which side
of a threshold a value is on."""

from __future__ import annotations

from ..api_keys.periods import current_spend
from .repository import KeyAlertRow

__all__ = ["MAX_THRESHOLDS", "key_spend_now", "key_threshold"]

#: Thresholds an account may set.
MAX_THRESHOLDS = 5


def key_threshold(spend_limit: int, percent: int) -> int:
    """Credits of spend at which a key's alert fires: `percent` of its limit, rounded up (an
    alert at 80% of 10 credits fires at 8; of 11, at 9), and at least 1."""
    return max(1, -(-spend_limit * percent // 100))


def key_spend_now(row: KeyAlertRow, now: float) -> int:
    """The key's spend in its current period (its counter, or 0 once the period has ended)."""
    return current_spend(row.spend_period, row.period_start, row.period_spend, now)
