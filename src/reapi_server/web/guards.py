"""Conditions a page puts on its visitor. A page calls one at its start; a refusal is an
exception the web application answers (a redirect to sign in)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..identity.service import CurrentSession
from ..models import User
from .context import visitor_of

__all__ = ["SignInRequired", "is_admin", "require_admin", "require_session"]


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


def is_admin(user: User | None) -> bool:
    return user is not None and user.role == "admin"


def require_admin(request: Request) -> CurrentSession:
    """An admin's live session; to anyone else (signed out included) the page does not exist:
    404, never a sign-in redirect or a 403 that would confirm it does."""
    session = visitor_of(request).session
    if session is None or not is_admin(session.user):
        raise HTTPException(404)
    return session
