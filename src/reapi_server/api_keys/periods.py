"""A key's spend period: UTC calendar days, ISO weeks (from Monday) or months, or one period
forever (`never`).

A key's counter belongs to the period that started at its `period_start`. A hold computes the
current period's start from the clock; when that is later than the counter's, the counter
starts again from zero (`credits.repository`). Nothing runs at midnight: the first hold of a
new period resets it, and until then every reader (the keys page) computes the same thing.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

__all__ = ["PERIODS", "Period", "current_spend", "next_reset", "period_start"]

Period = Literal["daily", "weekly", "monthly", "never"]
PERIODS: tuple[str, ...] = get_args(Period)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


#: Per period, the one that held the last moment asked about: (start, end). A credit hold asks
#: on every request; the calendar's arithmetic (4-5 us) then runs once a period.
_held: dict[str, tuple[float, float]] = {}


def period_start(period: str, now: float) -> float:
    """When the period holding `now` began (0.0 for `never`: its one period began at the
    epoch, before any counter)."""
    if period == "never":
        return 0.0
    held = _held.get(period)
    # Clear of its ends by a microsecond, to which `datetime` rounds `now`: the same answer.
    if held is not None and held[0] <= now and now + 1e-6 < held[1]:
        return held[0]
    start = _calendar_start(period, now)
    _held[period] = (start, _end_of(period, start))
    return start


def _calendar_start(period: str, now: float) -> float:
    moment = _utc(now)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start = day
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
    elif period == "monthly":
        start = day.replace(day=1)
    else:
        raise ValueError(f"unknown spend period {period!r}")
    return start.timestamp()


def next_reset(period: str, now: float) -> float | None:
    """When the period holding `now` ends and the counter starts again (None: never)."""
    if period == "never":
        return None
    return _end_of(period, period_start(period, now))


def _end_of(period: str, began: float) -> float:
    start = _utc(began)
    if period == "daily":
        end = start + timedelta(days=1)
    elif period == "weekly":
        end = start + timedelta(days=7)
    else:
        days = calendar.monthrange(start.year, start.month)[1]
        end = start + timedelta(days=days)
    return end.timestamp()


def current_spend(period: str, counter_start: float, counter: int, now: float) -> int:
    """What the key has spent (or holds) in the period holding `now`, from its counter: the
    counter itself, or zero when the counter belongs to an earlier period. The hold statement
    applies the same rule."""
    return 0 if period_start(period, now) > counter_start else counter
