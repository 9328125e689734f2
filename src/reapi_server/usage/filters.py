"""Which usage rows a person asked for (the dashboard's filters, the management API's query
parameters, the CLI's options), and where a page of them ends (a keyset cursor)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .calendar import DayRange

__all__ = ["STATUSES", "Cursor", "UsageFilter"]

#: What a usage row's `status` can be.
STATUSES = ("succeeded", "failed", "pending")


@dataclass(frozen=True, slots=True)
class UsageFilter:
    account_id: str
    days: DayRange
    #: None: every key (and requests made without one).
    key_id: str | None = None
    model: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last row of a page (time, then request id): the next page starts after it, however
    many rows came in since."""

    created_at: float
    id: str

    def encode(self) -> str:
        return f"{self.created_at!r}~{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """None for anything that is not a cursor this module wrote."""
        if not text or len(text) > 100:
            return None
        at, _, row_id = text.partition("~")
        try:
            created_at = float(at)
        except ValueError:
            return None
        if not math.isfinite(created_at) or not row_id or not row_id.isascii():
            return None
        return cls(created_at, row_id)
