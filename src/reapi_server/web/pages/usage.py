"""The usage page: the account's usage rows, filtered (dates in the person's time zone, key,
model, status) and paged newest first; their totals per day (a chart) and per key; a CSV of the
same filter; the time zone setting."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...identity.time_zone import set_time_zone
from ...usage.query import UsageQuery, parse_usage_query
from ...usage.reading import usage_report
from ..account import SignedIn, require_account
from ..charts import credits_chart, day_label
from ..context import runtime_of, web_of
from ..forms import field_errors, read_form, safe_next
from ..templates import render
from ..usage_view import (
    STATUS_LABELS,
    UNKNOWN_MODEL,
    UNKNOWN_MODEL_LABEL,
    key_rows,
    usage_rows,
    zone_options,
)

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

#: Rows per page of the table (each a card of six lines on a phone).
PAGE_SIZE = 25


def _link(path: str, query: UsageQuery, **more: str) -> str:
    values = {**query.query_string_values(), **more}
    return f"{path}?{urlencode(values)}" if values else path


async def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    web = web_of(request)
    rt = runtime_of(request)
    zone = signed_in.zone
    query = parse_usage_query(
        request.query_params,
        account_id=signed_in.account_id,
        zone=zone,
        now=web.clock(),
        strict=False,
    )
    report = await usage_report(
        web.db, query.filter, limit=PAGE_SIZE, older_than=query.older, newer_than=query.newer
    )
    keys = {k.id: k for k in report.keys}
    days = query.filter.days
    today = days.day_of(web.clock())
    page = report.page
    values: dict[str, Any] = {
        "title": "Usage",
        "query": query.values,
        "errors": {**query.errors, **(errors or {})},
        "keys": report.keys,
        # (value, label): the catalog's models, then the rows of requests naming none of them.
        "models": [(m, m) for m in sorted(rt.catalog.models)]
        + [(UNKNOWN_MODEL, UNKNOWN_MODEL_LABEL)],
        "statuses": [(name, label) for name, (label, _) in STATUS_LABELS.items()],
        "totals": report.totals,
        "key_totals": key_rows(report.totals, keys),
        "range_label": f"{day_label(days.first)} {days.first.year} to "
        f"{day_label(days.last)} {days.last.year}",
        "chart": credits_chart(report.totals.by_day, today=today, zone=zone.key),
        "rows": usage_rows(page.rows, zone, keys),
        "older_link": _link("/dashboard/usage", query, older=page.older_cursor.encode())
        if page.older_cursor
        else None,
        "newer_link": _link("/dashboard/usage", query, newer=page.newer_cursor.encode())
        if page.newer_cursor
        else None,
        "csv_link": _link("/api/usage.csv", query),
        "zone": zone.key,
        "zone_options": zone_options(zone.key),
        "retention_days": f"{web.settings.retention_days:g}",
        "here": _link("/dashboard/usage", query),
        "filtered": bool(query.filter.key_id or query.filter.model or query.filter.status),
    }
    return render(request, "usage.html", status=status, **values)


@router.get("/dashboard/usage")
async def usage_page(request: Request) -> Response:
    return await _page(request, await require_account(request))


@router.post("/dashboard/usage/time-zone")
async def save_time_zone(request: Request) -> Response:
    signed_in = await require_account(request)
    form = await read_form(request)
    try:
        async with web_of(request).db.write() as session:
            await set_time_zone(session, signed_in.session.user.id, form.get("time_zone", ""))
    except GatewayError as error:
        return await _page(request, signed_in, status=error.http_status, errors=field_errors(error))
    back = safe_next(form.get("next"), "/dashboard/usage")
    # The page's own filters come back; the notice is added to them.
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}done=time_zone_saved#time-zone", 303)
