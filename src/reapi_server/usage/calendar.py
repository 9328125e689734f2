"""Days as a person sees them: a range of dates in their time zone, where it starts and ends in
UTC, and the UTC offsets in force over it.

Usage is grouped by local day in SQL as whole days of (timestamp + offset), the offset being the
one in force at that instant; over a month there are at most a couple of offset changes
(daylight saving), so the query needs only those few (`offset_changes`), not one bound per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "DayRange",
    "default_range",
    "known_zones",
    "offered_zones",
    "zone_choices",
    "zone_named",
]

_EPOCH_DAY = date(1970, 1, 1).toordinal()


@cache
def known_zones() -> frozenset[str]:
    """The IANA names this installation knows (the system's tz database or `tzdata`)."""
    return frozenset(available_timezones() | {"UTC"})


#: Prefixes of legacy and alias names (US/Eastern, Etc/GMT+5, ...): the regional names cover them.
_ALIAS_PREFIXES = ("Etc", "SystemV", "US", "Canada", "Brazil", "Mexico", "Chile")


@cache
def zone_choices() -> list[tuple[str, list[str]]]:
    """The zones a person may choose, by region (Africa, America, ...); UTC first, alone."""
    groups: dict[str, list[str]] = {}
    for name in sorted(known_zones()):
        region, slash, _ = name.partition("/")
        if slash and region not in _ALIAS_PREFIXES:
            groups.setdefault(region, []).append(name)
    return [("", ["UTC"]), *sorted(groups.items())]


@cache
def offered_zones() -> frozenset[str]:
    return frozenset(name for _, names in zone_choices() for name in names)


def zone_named(name: str) -> ZoneInfo:
    """The zone of that IANA name; UTC for anything unknown (never a path: only known names
    are looked up)."""
    if name in known_zones():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(), tzinfo=zone).timestamp()


def _offset(instant: float, zone: ZoneInfo) -> int:
    delta = datetime.fromtimestamp(instant, zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@dataclass(frozen=True, slots=True)
class DayRange:
    """The local dates `first` to `last`, both included, in `zone`."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> float:
        """UTC seconds of the first day's local midnight (included)."""
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> float:
        """UTC seconds of the local midnight after the last day (excluded)."""
        return _midnight(self.last + timedelta(days=1), self.zone)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def day_of(self, instant: float) -> date:
        return datetime.fromtimestamp(instant, self.zone).date()

    def offset_at(self, instant: float) -> int:
        return _offset(instant, self.zone)

    @property
    def first_offset(self) -> int:
        return _offset(self.start, self.zone)

    def offset_changes(self) -> list[tuple[float, int]]:
        """(UTC second from which it applies, offset) for every change inside the range."""
        changes: list[tuple[float, int]] = []
        bounds = [_midnight(day, self.zone) for day in self.days()] + [self.end]
        current = self.first_offset
        for low, high in pairwise(bounds):
            if _offset(high - 1, self.zone) == current:
                continue
            # A change within this day: find its exact second (zones change on whole seconds).
            lo, hi = int(low), int(high - 1)
            while lo < hi:
                mid = (lo + hi) // 2
                if _offset(mid, self.zone) == current:
                    lo = mid + 1
                else:
                    hi = mid
            current = _offset(lo, self.zone)
            changes.append((float(lo), current))
        return changes

    @staticmethod
    def date_of_day_number(number: int) -> date:
        """The date of a day number (whole days since 1970-01-01) the SQL grouping gives."""
        return date.fromordinal(_EPOCH_DAY + number)


def default_range(now: float, zone: ZoneInfo, *, days: int) -> DayRange:
    """The last `days` local days, today included."""
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    return DayRange(today - timedelta(days=days - 1), today, zone)
