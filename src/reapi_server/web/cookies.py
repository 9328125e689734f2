"""The cookies the web half sets, and nothing else: the session cookie and the CSRF cookie
(and, listed only when an operator enables them, those of Turnstile and a chat widget).

On an https public address both get the `__Host-` prefix and `Secure` (the browser then refuses
them from plain http, from another path, or with a Domain); on plain http (the demo on
loopback) neither is possible, so the names are bare. Both are HttpOnly and SameSite=Lax.
`inventory()` describes them for the cookie policy page, which is generated from it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from starlette.responses import Response

__all__ = ["CookieInfo", "CookiePolicy", "new_browser_id"]

_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_browser_id() -> str:
    return secrets.token_urlsafe(32)


def well_formed(value: str | None) -> str | None:
    return value if value is not None and _SHAPE.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class CookieInfo:
    """One line of the cookie policy."""

    name: str
    purpose: str
    lifetime: str
    when: str
    #: Another service that sets it (a service the operator enabled); None: this site.
    set_by: str | None = None


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    secure: bool
    #: Seconds the session cookie lives (the session's absolute end).
    session_seconds: int
    #: Cookies of the services this installation enabled (Turnstile, a chat widget).
    third_party: tuple[CookieInfo, ...] = ()

    @property
    def session_name(self) -> str:
        return "__Host-reapi_session" if self.secure else "reapi_session"

    @property
    def csrf_name(self) -> str:
        return "__Host-reapi_csrf" if self.secure else "reapi_csrf"

    def _set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def set_session(self, response: Response, token: str) -> None:
        self._set(response, self.session_name, token, self.session_seconds)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            self.session_name, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    def set_browser_id(self, response: Response, value: str) -> None:
        # A browser-session cookie: it identifies nothing beyond this visit.
        self._set(response, self.csrf_name, value, None)

    def inventory(self) -> list[CookieInfo]:
        days = round(self.session_seconds / 86_400)
        return [
            CookieInfo(
                self.session_name,
                "Keeps you signed in. It holds a random session id; the server keeps only a "
                "hash of it.",
                f"Until you sign out, at most {days} days",
                "When you sign in or create an account",
            ),
            CookieInfo(
                self.csrf_name,
                "Protects forms against cross-site request forgery. It holds a random value "
                "that identifies nothing about you.",
                "Until you close the browser",
                "When you first open a page of this site",
            ),
            *self.third_party,
        ]
