"""The confirm-access page on its own (`web.sudo.CONFIRM_PAGE`): where a download that needs a
recent authentication sends the person, and where the management API's `step_up_required`
points; once confirmed, back to `next`."""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ..context import web_of
from ..forms import read_form, safe_next
from ..guards import require_session
from ..sudo import CONFIRM_PAGE, confirm_page, sudo_or_confirm

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_DOWNLOADS = "/settings/data/"


class _Wording(TypedDict):
    back: str
    doing: str
    cancel: str


def _for(next_url: str) -> _Wording:
    """What the page says and where its links go, for a confirmation on its way to `next`."""
    return {
        "back": next_url,
        "doing": "download your data" if next_url.startswith(_DOWNLOADS) else "",
        "cancel": "/settings",  # `next` may be a download, which would send back here
    }


@router.get(CONFIRM_PAGE)
async def confirm_access_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    current = require_session(request)
    if web_of(request).identity.recently_authenticated(current):
        return RedirectResponse(next_url, status_code=303)
    return await confirm_page(
        request, action=CONFIRM_PAGE, fields=[("next", next_url)], status=200, **_for(next_url)
    )


@router.post(CONFIRM_PAGE)
async def confirm_access(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    asked = await sudo_or_confirm(request, form.items(), **_for(next_url))
    return asked or RedirectResponse(next_url, status_code=303)
