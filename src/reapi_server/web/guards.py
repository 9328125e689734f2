"""Conditions a page puts on its visitor. A page calls one at its start; a refusal is an
exception the web application answers (a redirect to sign in)."""

from __future__ import annotations

from starlette.requests import Request

from ..identity.service import CurrentSession
from .context import visitor_of

__all__ = ["SignInRequired", "require_session"]


class SignInRequired(Exception):
    """Answered with a redirect to the sign-in page, which comes back to `next_url`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def require_session(request: Request) -> CurrentSession:
    """The visitor's live session, or `SignInRequired`."""
    session = visitor_of(request).session
    if session is None:
        raise SignInRequired(request.url.path)
    return session
