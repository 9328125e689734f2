"""The export document: every section's rows about one person, as one JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .section import Row, Section, Subject, iso

__all__ = ["FORMAT", "collect", "document", "to_json"]

#: Names the layout, so that a reader can tell future versions apart.
FORMAT = "reapi-export/1"
_HEADER = ("format", "site", "exported_at", "user_id")


async def collect(
    session: AsyncSession, subject: Subject, sections: Sequence[Section]
) -> dict[str, list[Row]]:
    """Section name → the person's rows, read in one transaction."""
    return {section.name: await section.rows(session, subject) for section in sections}


def document(
    subject: Subject, rows: dict[str, list[Row]], *, site: str, now: float
) -> dict[str, Any]:
    clash = set(rows) & set(_HEADER)
    assert not clash, f"section names taken by the header: {clash}"
    return {
        "format": FORMAT,
        "site": site,
        "exported_at": iso(now),
        "user_id": subject.user_id,
        **rows,
    }


def to_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n"
