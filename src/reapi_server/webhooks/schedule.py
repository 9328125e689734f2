"""When to try a failed delivery again: pure decisions, no I/O.

The delays follow the Standard Webhooks example schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
...), each with up to a fifth of random jitter either way, so that receivers that fail together
are not retried together. A receiver's Retry-After (429, 503) pushes the next attempt later,
never earlier. Attempts stop at the end of the retry window (a day), and the last one falls at
its end.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["JITTER", "next_attempt"]

#: The largest share of a delay added or taken at random.
JITTER = 0.2


def next_attempt(
    attempts: int,
    started: float,
    now: float,
    *,
    delays: Sequence[float],
    window: float,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float | None:
    """When attempt number `attempts + 1` is due, after `attempts` failed ones of a delivery
    made at `started`; None when the window is over."""
    end = started + window
    if now >= end:
        return None
    delay = delays[min(max(attempts, 1), len(delays)) - 1]
    delay *= 1 + JITTER * (2 * (rand or random).random() - 1)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return min(now + delay, end)
