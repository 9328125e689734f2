"""Settings → Notifications: the newsletter choice (its own form; other notification settings
have theirs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ..context import web_of
from ..forms import read_form
from ..guards import require_session

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.post("/settings/notifications/newsletter")
async def set_newsletter(request: Request) -> Response:
    current = require_session(request)
    web = web_of(request)
    if not web.subscriptions.offered:  # this installation has no newsletter
        raise HTTPException(404)
    form = await read_form(request)
    subscribed = form.get("newsletter") == "yes"
    await web.subscriptions.set(current.user.id, subscribed)
    done = "newsletter_on" if subscribed else "newsletter_off"
    return RedirectResponse(f"/settings?done={done}#notifications", 303)
