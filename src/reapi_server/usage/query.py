"""The usage filters of a query string (the usage page, `/api/usage`, `/api/usage.csv`): dates in
the person's time zone, key, model, status, and the page cursor. A page shows what is wrong
beside the form and falls back to the default; the API refuses with 400."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from ..errors import GatewayError
from .calendar import DayRange, default_range
from .filters import STATUSES, Cursor, UsageFilter

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "UsageQuery", "parse_usage_query"]

#: The range shown when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30
#: The longest range one query may cover.
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class UsageQuery:
    filter: UsageFilter
    older: Cursor | None = None
    newer: Cursor | None = None
    #: The filters as the form shows them (from, to, key, model, status).
    values: dict[str, str] = field(default_factory=dict)
    #: Field name → what is wrong with it (the page shows these; the API raises instead).
    errors: dict[str, str] = field(default_factory=dict)

    def query_string_values(self) -> dict[str, str]:
        """The filters that differ from "everything": what a link to this view carries."""
        return {name: value for name, value in self.values.items() if value}


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse_usage_query(
    params: Mapping[str, str], *, account_id: str, zone: ZoneInfo, now: float, strict: bool
) -> UsageQuery:
    errors: dict[str, str] = {}
    default = default_range(now, zone, days=DEFAULT_DAYS)
    first, last = default.first, default.last
    raw_from, raw_to = params.get("from", "").strip(), params.get("to", "").strip()
    if raw_to:
        parsed = _date(raw_to)
        if parsed is None:
            errors["to"] = "Enter the end date as YYYY-MM-DD."
        else:
            last = parsed
            first = last - timedelta(days=DEFAULT_DAYS - 1)
    if raw_from:
        parsed = _date(raw_from)
        if parsed is None:
            errors["from"] = "Enter the start date as YYYY-MM-DD."
        else:
            first = parsed
    if not errors and first > last:
        errors["from"] = "The start date must not be after the end date."
    elif not errors and (last - first).days + 1 > MAX_DAYS:
        errors["from"] = f"Choose a range of at most {MAX_DAYS} days."
    if errors:
        first, last = default.first, default.last
    status = params.get("status", "").strip() or None
    if status is not None and status not in STATUSES:
        errors["status"] = "Choose a status from the list."
        status = None
    key_id = params.get("key", "").strip()[:64] or None
    model = params.get("model", "").strip()[:100] or None
    older = Cursor.decode(params.get("older"))
    newer = None if older is not None else Cursor.decode(params.get("newer"))
    if strict and errors:
        name, message = next(iter(errors.items()))
        raise GatewayError(message, param=name, code="invalid_filter")
    values = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "key": key_id or "",
        "model": model or "",
        "status": status or "",
    }
    days = DayRange(first, last, zone)
    return UsageQuery(
        UsageFilter(account_id, days, key_id=key_id, model=model, status=status),
        older,
        newer,
        values,
        errors,
    )
