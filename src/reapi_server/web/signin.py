"""Where a sign-in becomes a session: one place for every way in (password, OAuth).

`complete_sign_in` is called once a first factor has passed (`Identity.authenticate`, an OAuth
callback). A user with two-factor authentication on gets a pending session instead (it reaches
`/login/2fa` only, for ten minutes); the code there makes the full session with a new id
(`Identity.complete_second_factor`). Everyone else gets their session at once.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..identity.service import SignedIn
from ..models import User
from .context import client_of, visitor_of, web_of
from .cookies import new_browser_id

__all__ = ["SECOND_FACTOR_PAGE", "complete_sign_in", "sign_in_response", "signed_out_response"]

SECOND_FACTOR_PAGE = "/login/2fa"


def sign_in_response(request: Request, signed_in: SignedIn, location: str) -> Response:
    """A redirect that gives the browser its new session cookie, and a new browser id: no
    value the browser had before signing in is worth anything after."""
    web = web_of(request)
    response = RedirectResponse(location, status_code=303)
    web.cookies.set_session(response, signed_in.token)
    web.cookies.set_browser_id(response, new_browser_id())
    return response


def signed_out_response(request: Request, location: str) -> Response:
    web = web_of(request)
    response = RedirectResponse(location, status_code=303)
    web.cookies.clear_session(response)
    web.cookies.set_browser_id(response, new_browser_id())
    return response


async def complete_sign_in(request: Request, user: User, location: str) -> Response:
    """`user` has passed the first factor: make their session (ending whatever session this
    browser had) and send them on to `location`, or, with two-factor authentication on, make
    a pending session and send them to the code page first."""
    web = web_of(request)
    client = client_of(request)
    replacing = visitor_of(request).session_cookie
    if user.totp_enabled_at is not None:
        pending = await web.identity.start_pending(user, client, replacing=replacing)
        query = urlencode({"next": location}) if location != "/settings" else ""
        target = f"{SECOND_FACTOR_PAGE}?{query}" if query else SECOND_FACTOR_PAGE
        response = RedirectResponse(target, status_code=303)
        web.cookies.set_session(response, pending.token)
        return response
    signed_in = await web.identity.start_session(user, client, replacing=replacing)
    return sign_in_response(request, signed_in, location)
