"""What an export section is: a name, the tables it reads, and a function that returns the
person's rows from them. Domains add theirs to `sections.SECTIONS` (one line each); a test
checks that every table of the schema is either exported or said not to be about anyone."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Row", "Section", "Subject", "iso"]

#: One exported row: JSON values only (str, int, float, bool, None).
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose data: the person, the accounts they own, and what formatting needs."""

    user_id: str
    email: str
    account_ids: tuple[str, ...]
    #: Where this gateway is reached (absolute output URLs).
    base_url: str
    #: How long outputs are kept (their expiry in the export).
    output_retention_seconds: float
    #: The sign-in throttle rows about this person (keyed hashes of the email, the user id).
    throttle_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    #: The tables whose rows about the person this section holds.
    tables: tuple[str, ...]
    rows: Callable[[AsyncSession, Subject], Awaitable[list[Row]]]


def iso(timestamp: float | None) -> str | None:
    """A time as ISO 8601 in UTC (the export's one time format)."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
