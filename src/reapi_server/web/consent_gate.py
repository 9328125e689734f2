"""A person whose account an operator made (`reapi-server accounts create`) was never asked
what both ways of signing up ask: that they are 16 or older, and that they accept the terms and
the privacy policy. Their session waits for it (`CurrentSession.consent_due`: a pending visitor,
signed in to no page) until they confirm both on the consent page: every other page sends them
there, and they come back once done. The legal pages stay readable (the boxes link to them) and
signing out works; the management API answers to keys, not sessions."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .context import Visitor

__all__ = ["CONSENT_PAGE", "ConsentGate"]

CONSENT_PAGE = "/login/consent"
_OPEN = frozenset({CONSENT_PAGE, "/logout"})
_OPEN_PREFIXES = ("/legal/",)


class ConsentGate:
    def __init__(self, app: ASGIApp, *, key_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        #: Paths whose requests are authenticated by a key, never by the session.
        self.key_prefixes = key_prefixes

    def _open(self, path: str) -> bool:
        return path in _OPEN or path.startswith(_OPEN_PREFIXES + self.key_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        visitor: Visitor | None = scope.get("state", {}).get("visitor")
        pending = visitor.pending if visitor is not None else None
        if pending is None or not pending.consent_due or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        target = CONSENT_PAGE
        if scope["method"] in ("GET", "HEAD"):  # back to this page once done
            query = scope["query_string"].decode("latin-1")
            target += "?" + urlencode({"next": scope["path"] + ("?" + query if query else "")})
        await RedirectResponse(target, status_code=303)(scope, receive, send)
