"""Settings → Notifications: the newsletter choice and new-device sign-in alerts, each its own
form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ..context import client_of, web_of
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


@router.post("/settings/notifications/devices")
async def new_device_alerts(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    on = form.get("new_device_alerts") == "yes"
    await web_of(request).identity.set_new_device_alerts(current, on, client_of(request))
    return RedirectResponse("/settings?done=device_alerts_saved#notifications", 303)
