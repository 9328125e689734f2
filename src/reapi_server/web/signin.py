"""Where a sign-in becomes a session: one place for every way in (password today; OAuth next).

A second factor goes here: after the first factor (`Identity.authenticate`, an OAuth callback)
and before `Identity.start_session`, `complete_sign_in` is where a 2FA step would hold the user
(e.g. redirect to a code page with a short-lived pending state) instead of making the session.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..identity.service import SignedIn
from ..models import User
from .context import client_of, visitor_of, web_of
from .cookies import new_browser_id

__all__ = ["complete_sign_in", "sign_in_response", "signed_out_response"]


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
    browser had) and send them on to `location`."""
    web = web_of(request)
    signed_in = await web.identity.start_session(
        user, client_of(request), replacing=visitor_of(request).session_cookie
    )
    return sign_in_response(request, signed_in, location)
