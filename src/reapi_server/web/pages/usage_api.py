"""The management API's usage: `GET /api/usage` (JSON, a page of rows and the totals of the
filter) and `GET /api/usage.csv` (every row of the filter). Same filters, same services as the
usage page.

Authentication here is the browser's session (GET: no CSRF token needed, nothing changes). The
management key (`Authorization: Bearer rk_mgmt_...`) joins through the shared management-auth
dependency of `/api/keys` and `/api/balance`."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ...errors import GatewayError
from ...openai_api.errors import error_response
from ...openai_api.responses import json_response
from ...usage.calendar import known_zones, zone_named
from ...usage.export import csv_chunks, usage_json
from ...usage.query import UsageQuery, parse_usage_query
from ...usage.reading import key_labels, usage_report
from ..account import SignedIn, account_id_of
from ..context import visitor_of, web_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Rows per page unless `limit` says otherwise, and the most it may say.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class _NotSignedIn(GatewayError):
    http_status = 401
    default_code = "unauthenticated"


def _error(error: GatewayError) -> Response:
    return error_response(error.http_status, error.message, code=error.code, param=error.param)


async def _caller(request: Request) -> SignedIn:
    session = visitor_of(request).session
    if session is None:
        raise _NotSignedIn("sign in, or send a management key as `Authorization: Bearer ...`")
    account_id = await account_id_of(request, session)
    if account_id is None:
        raise _NotSignedIn("this user has no account")
    return SignedIn(session, account_id)


def _query(request: Request, caller: SignedIn) -> UsageQuery:
    params = request.query_params
    zone = caller.zone
    if "time_zone" in params:
        if params["time_zone"] not in known_zones():
            raise GatewayError("unknown time zone (an IANA name)", param="time_zone")
        zone = zone_named(params["time_zone"])
    return parse_usage_query(
        params, account_id=caller.account_id, zone=zone, now=web_of(request).clock(), strict=True
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


@router.get("/api/usage")
async def usage_json_endpoint(request: Request) -> Response:
    try:
        caller = await _caller(request)
        query = _query(request, caller)
        limit = _limit(request)
    except GatewayError as error:
        return _error(error)
    report = await usage_report(
        web_of(request).db,
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


@router.get("/api/usage.csv")
async def usage_csv_endpoint(request: Request) -> Response:
    try:
        caller = await _caller(request)
        query = _query(request, caller)
    except GatewayError as error:
        return _error(error)
    db = web_of(request).db
    keys = {k.id: k for k in await key_labels(db, caller.account_id)}
    days = query.filter.days
    return StreamingResponse(
        csv_chunks(db, query.filter, keys),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{_filename(days.first, days.last)}"'
        },
    )
