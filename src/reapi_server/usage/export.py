"""Usage rows as they leave the gateway: CSV (the dashboard's export, `/api/usage.csv`,
`reapi-server usage export`) and JSON (`/api/usage`). The same columns everywhere; times in the
person's time zone, with its offset."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..db import Database
from ..models import UsageRecord
from ..safe_csv import csv_lines
from .filters import UsageFilter
from .reading import KeyLabel, export_rows

__all__ = ["COLUMNS", "csv_chunks", "local_time", "row_values", "usage_json"]

COLUMNS = (
    "request_id",
    "time",
    "key_id",
    "key_name",
    "model",
    "endpoint",
    "credit_cost",
    "status",
    "error_code",
)


def local_time(timestamp: float, zone: ZoneInfo) -> str:
    """ISO 8601 to the second, with the zone's offset: 2027-01-15T14:03:22+01:00."""
    return datetime.fromtimestamp(int(timestamp), zone).isoformat()


def row_values(
    row: UsageRecord, zone: ZoneInfo, keys: Mapping[str, KeyLabel]
) -> tuple[object, ...]:
    key = keys.get(row.api_key_id or "")
    return (
        row.id,
        local_time(row.created_at, zone),
        row.api_key_id,
        key.name if key is not None else None,
        row.model,
        row.endpoint,
        row.credit_cost,
        row.status,
        row.error_code,
    )


def usage_json(row: UsageRecord, zone: ZoneInfo, keys: Mapping[str, KeyLabel]) -> dict[str, Any]:
    values = dict(zip(COLUMNS, row_values(row, zone, keys), strict=True))
    values.pop("request_id")
    return {"id": row.id, "object": "usage", "created_at": int(row.created_at), **values}


async def csv_chunks(
    db: Database, f: UsageFilter, keys: Mapping[str, KeyLabel]
) -> AsyncIterator[bytes]:
    """The header, then every row the filter matches (newest first), a batch per chunk."""
    yield csv_lines([COLUMNS])
    zone = f.days.zone
    async for batch in export_rows(db, f):
        yield csv_lines(row_values(row, zone, keys) for row in batch)
