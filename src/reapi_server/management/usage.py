"""/api/usage (JSON: a page of rows and the totals of the whole filter) and /api/usage.csv (every
row of the filter): the usage page's filters, read through the same services as the page.

Days are local to a time zone: the `time_zone` parameter, else the setting of the person signed
in, else (a management key) the setting of the account's owner."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ..errors import GatewayError
from ..json_api.responses import json_response
from ..usage.calendar import known_zones, zone_named
from ..usage.export import csv_chunks, usage_json
from ..usage.query import UsageQuery, parse_usage_query
from ..usage.reading import key_labels, owner_time_zone, usage_report
from .auth import Manager, ManagerOf, runtime_of

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "router"]

router = APIRouter()

#: Rows per page unless `limit` says otherwise, and the most it may say.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


async def _zone(request: Request, manager: ManagerOf) -> ZoneInfo:
    asked = request.query_params.get("time_zone")
    if asked is not None:
        if asked not in known_zones():
            raise GatewayError("unknown time zone (an IANA name)", param="time_zone")
        return zone_named(asked)
    if manager.user is not None:
        return zone_named(manager.user.time_zone)
    return zone_named(await owner_time_zone(runtime_of(request).db, manager.account_id))


async def _query(request: Request, manager: ManagerOf) -> UsageQuery:
    return parse_usage_query(
        request.query_params,
        account_id=manager.account_id,
        zone=await _zone(request, manager),
        now=runtime_of(request).now(),
        strict=True,
    )


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise GatewayError(f"limit must be a whole number from 1 to {MAX_LIMIT}", param="limit")
    return int(raw)


def _filters(query: UsageQuery) -> dict[str, Any]:
    f = query.filter
    return {
        "from": f.days.first.isoformat(),
        "to": f.days.last.isoformat(),
        "time_zone": f.days.zone.key,
        "key": f.key_id,
        "model": f.model,
        "status": f.status,
    }


@router.get("/usage")
async def usage(request: Request, manager: Manager) -> Response:
    query = await _query(request, manager)
    limit = _limit(request)
    report = await usage_report(
        runtime_of(request).db,
        query.filter,
        limit=limit,
        older_than=query.older,
        newer_than=query.newer,
    )
    keys = {k.id: k for k in report.keys}
    zone = query.filter.days.zone
    totals = report.totals
    older, newer = report.page.older_cursor, report.page.newer_cursor
    return json_response(
        {
            "object": "list",
            "data": [usage_json(row, zone, keys) for row in report.page.rows],
            "has_more": older is not None,
            "next_cursor": older.encode() if older else None,
            "previous_cursor": newer.encode() if newer else None,
            "filters": _filters(query),
            "totals": {
                "requests": totals.requests,
                "credits": totals.credits,
                "failed": totals.failed,
                "by_key": [
                    {"key_id": k.key_id, "requests": k.requests, "credits": k.credits}
                    for k in totals.by_key
                ],
                "by_day": [
                    {"date": d.day.isoformat(), "requests": d.requests, "credits": d.credits}
                    for d in totals.by_day
                ],
            },
        }
    )


def _filename(first: date, last: date) -> str:
    return f"usage-{first.isoformat()}-to-{last.isoformat()}.csv"


@router.get("/usage.csv")
async def usage_csv(request: Request, manager: Manager) -> Response:
    query = await _query(request, manager)
    db = runtime_of(request).db
    keys = {k.id: k for k in await key_labels(db, manager.account_id)}
    days = query.filter.days
    return StreamingResponse(
        csv_chunks(db, query.filter, keys),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{_filename(days.first, days.last)}"'
        },
    )
