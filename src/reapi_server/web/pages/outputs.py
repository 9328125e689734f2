"""The outputs page: the account's stored images and videos, newest first, with the date each
is deleted by retention; open one, copy its URL, delete one, delete all (each after a page that
asks to confirm, as the other destructive actions of the dashboard). Deleting goes through
the mirror's deletion service: rows first, so the URL answers 404 from that moment, then the
objects (what storage refuses stays queued)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ...mirror.listing import ListedOutput, browse, listed_output
from ...mirror.outputs import file_url
from ...mirror.service import delete_account_outputs, delete_output
from ...retention.service import DAY
from ...usage.filters import Cursor
from ..account import require_account
from ..context import runtime_of, web_of
from ..templates import render

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

#: Outputs per page.
PAGE_SIZE = 24


def _size(size_bytes: int) -> str:
    """A size whose number never wraps away from its unit (a no-break space between)."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f}\u00a0{unit}"
    return f"{size_bytes}\u00a0bytes"


def _card(
    output: ListedOutput, request: Request, zone: Any, retention_days: float
) -> dict[str, Any]:
    web = web_of(request)
    base = web.links.base_url
    expires = output.created_at + retention_days * DAY
    days_left = max(0, math.ceil((expires - web.clock()) / DAY))
    what = [output.model or ("Video" if output.kind == "video" else "Image")]
    if output.seconds:
        what.append(f"{output.seconds} s")
    if output.size:
        what.append(output.size)
    return {
        "id": output.id,
        "kind": output.kind,
        "url": file_url(base, output.id),
        "preview": file_url(base, output.thumbnail_id)
        if output.thumbnail_id
        else (file_url(base, output.id) if output.kind == "image" else None),
        "title": " · ".join(what),
        "created": datetime.fromtimestamp(output.created_at, zone).strftime("%d %b %Y, %H:%M"),
        "expires": datetime.fromtimestamp(expires, zone).strftime("%d %b %Y"),
        "expires_iso": datetime.fromtimestamp(expires, zone).date().isoformat(),
        "days_left": days_left,
        "size": _size(output.size_bytes),
    }


@router.get("/dashboard/outputs")
async def outputs_page(request: Request) -> Response:
    signed_in = await require_account(request)
    web = web_of(request)
    older = Cursor.decode(request.query_params.get("older"))
    newer = None if older else Cursor.decode(request.query_params.get("newer"))
    stored = await browse(
        web.db, signed_in.account_id, limit=PAGE_SIZE, older_than=older, newer_than=newer
    )
    page = stored.page
    retention = web.settings.retention_days
    return render(
        request,
        "outputs.html",
        title="Outputs",
        outputs=[_card(o, request, signed_in.zone, retention) for o in page.outputs],
        count=f"{stored.count:,}",
        total_size=_size(stored.size_bytes),
        any_stored=stored.count > 0,
        older_link=f"/dashboard/outputs?{urlencode({'older': page.older_cursor.encode()})}"
        if page.older_cursor
        else None,
        newer_link=f"/dashboard/outputs?{urlencode({'newer': page.newer_cursor.encode()})}"
        if page.newer_cursor
        else None,
        retention_days=f"{retention:g}",
    )


@router.get("/dashboard/outputs/{file_id}/delete")
async def confirm_delete_one(request: Request, file_id: str) -> Response:
    """The confirmation the list's Delete leads to (a page, so it works without JavaScript):
    which output, that its URL stops working, that it cannot be undone."""
    signed_in = await require_account(request)
    web = web_of(request)
    output = await listed_output(web.db, signed_in.account_id, file_id[:64])
    if output is None:
        raise HTTPException(404)
    card = _card(output, request, signed_in.zone, web.settings.retention_days)
    return render(request, "outputs_delete.html", title="Delete output", output=card)


@router.post("/dashboard/outputs/{file_id}/delete")
async def delete_one(request: Request, file_id: str) -> Response:
    signed_in = await require_account(request)
    if not await delete_output(runtime_of(request), signed_in.account_id, file_id[:64]):
        raise HTTPException(404)
    return RedirectResponse("/dashboard/outputs?done=output_deleted", 303)


@router.get("/dashboard/outputs/delete-all")
async def confirm_delete_all(request: Request) -> Response:
    signed_in = await require_account(request)
    stored = await browse(web_of(request).db, signed_in.account_id, limit=1)
    return render(
        request,
        "outputs_delete_all.html",
        title="Delete all outputs",
        count=f"{stored.count:,}",
        any_stored=stored.count > 0,
    )


@router.post("/dashboard/outputs/delete-all")
async def delete_all(request: Request) -> Response:
    signed_in = await require_account(request)
    await delete_account_outputs(runtime_of(request), signed_in.account_id)
    return RedirectResponse("/dashboard/outputs?done=outputs_deleted", 303)
