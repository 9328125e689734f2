"""Settings: the profile (email, verification) and security (password, two-factor status,
sessions).

Other sections (two-factor authentication, email change, notifications, data export, deletion)
have their routes in modules of their own and their blocks in `settings.html`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ..context import client_of, web_of
from ..forms import PASSWORD_HINT, field_errors, read_form, retry_headers
from ..guards import require_session
from ..signin import sign_in_response
from ..templates import render
from .alert_settings import alert_settings

__all__ = ["router", "settings_with_errors"]

router = APIRouter(include_in_schema=False)


def _when(timestamp: float) -> str:
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(timestamp))


async def _settings_page(
    request: Request, *, status: int = 200, headers: dict[str, str] | None = None, **values: Any
) -> Response:
    current = require_session(request)
    web = web_of(request)
    rows = await web.identity.sessions_of(current.user.id)
    sessions = [
        {
            "id": row.id,
            "current": row.id == current.id,
            "device": row.browser,
            "address": row.client_address or "unknown address",
            "last_seen": _when(row.last_seen_at),
            "created": _when(row.created_at),
        }
        for row in rows
    ]
    sessions.sort(key=lambda s: not s["current"])  # this browser first, then the latest
    two_factor = await web.identity.two_factor.status(current.user.id)
    alerts = await alert_settings(request, current)
    return render(
        request,
        "settings.html",
        status=status,
        headers=headers,
        sessions=sessions,
        verified_at=_when(current.user.email_verified_at)
        if current.user.email_verified_at is not None
        else None,
        has_password=current.user.password_hash is not None,
        password_hint=PASSWORD_HINT,
        newsletter_offered=web.subscriptions.offered,
        two_factor=two_factor,
        two_factor_since=_when(two_factor.enabled_at) if two_factor.enabled_at else None,
        sign_in_methods=await _sign_in_methods(request, current.user.id),
        **{**alerts, **values},
    )


async def _sign_in_methods(request: Request, user_id: str) -> list[dict[str, Any]]:
    """Each provider configured or linked: linked (with what and since when) or not."""
    oauth = web_of(request).oauth
    linked = {i.provider: i for i in await oauth.identities_of(user_id)}
    names = list(oauth.providers) + [name for name in linked if name not in oauth.providers]
    methods = []
    for name in names:
        provider, identity = oauth.provider(name), linked.get(name)
        methods.append(
            {
                "name": name,
                "label": provider.label if provider is not None else name.capitalize(),
                "can_link": provider is not None,
                "identity_id": identity.id if identity else None,
                "email": (identity.email or "") if identity else "",
                "since": _when(identity.created_at) if identity else "",
            }
        )
    return methods


async def settings_with_errors(
    request: Request, *, status: int, errors: dict[str, str]
) -> Response:
    """The settings page answering another page module's refused form."""
    return await _settings_page(request, status=status, errors=errors)


@router.get("/settings")
async def settings_page(request: Request) -> Response:
    return await _settings_page(request)


@router.post("/settings/verification")
async def resend_verification(request: Request) -> Response:
    current = require_session(request)
    try:
        await web_of(request).identity.send_verification(current.user)
    except GatewayError as error:
        return await _settings_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors={"verification": error.message},
        )
    return RedirectResponse("/settings?done=verification_sent", 303)


@router.post("/settings/password")
async def change_password(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    try:
        signed_in = await web_of(request).identity.change_password(
            current,
            form.get("current_password", ""),
            form.get("password", ""),
            client_of(request),
        )
    except GatewayError as error:
        return await _settings_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
        )
    return sign_in_response(request, signed_in, "/settings?done=password_changed#security")


@router.post("/settings/sessions/{session_id}/end")
async def end_session(request: Request, session_id: str) -> Response:
    current = require_session(request)
    if session_id == current.id:  # this browser: that is signing out
        return RedirectResponse("/settings#sessions", 303)
    await web_of(request).identity.end_session(current.user.id, session_id)
    return RedirectResponse("/settings?done=session_ended#sessions", 303)


@router.post("/settings/sessions/end-others")
async def end_other_sessions(request: Request) -> Response:
    current = require_session(request)
    await web_of(request).identity.end_other_sessions(current)
    return RedirectResponse("/settings?done=sessions_ended#sessions", 303)
