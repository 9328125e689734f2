"""Cross-site request forgery: every state-changing request of the web half must prove it
comes from one of our own pages.

- A synchronizer token: the `csrf_token` form field (or the `X-CSRF-Token` header, for fetch
  calls) must equal HMAC(csrf key, session id) when signed in, HMAC(csrf key, browser id)
  before (`Visitor.csrf_token`), compared in constant time.
- `Sec-Fetch-Site: cross-site`, or an `Origin` that is not this gateway's, is refused even with
  a token.

Refusals are a 403 page. Exempt paths (`EXEMPT`) carry their own proof instead: the webhook and
one-click unsubscribe endpoints register themselves there (an entry ending in "/" exempts every
path below it).

Under `bearer_prefixes` (the management API), a request that carries an `Authorization` header
is authenticated by that header alone, never by the cookie, so it needs no token: a browser
sends no such header on a cross-site request (it would need a CORS preflight, never granted).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import Visitor, WebContext

__all__ = ["EXEMPT", "FORM_LIMIT", "CsrfMiddleware", "exempt"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths whose POSTs are authenticated otherwise (a signature, a per-recipient token); an
#: entry ending in "/" is a prefix. Each is added beside its route, with the reason.
EXEMPT: set[str] = set()


def exempt(path: str) -> bool:
    return path in EXEMPT or any(p.endswith("/") and path.startswith(p) for p in EXEMPT)


#: The largest form the web half reads (its forms are a few fields).
FORM_LIMIT = 64 * 1024

Refuse = Callable[[Scope, Receive, Send, int], Awaitable[None]]


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _TooLarge  # the client went away
        body += message.get("body", b"")
        if len(body) > FORM_LIMIT:
            raise _TooLarge
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class CsrfMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        web: WebContext,
        refuse: Refuse,
        bearer_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.web = web
        self.refuse = refuse
        self.bearer_prefixes = bearer_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or exempt(scope["path"])
            or scope["path"].startswith("/static/")
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "authorization" in headers and scope["path"].startswith(self.bearer_prefixes):
            await self.app(scope, receive, send)
            return
        if headers.get("sec-fetch-site") == "cross-site":
            await self.refuse(scope, receive, send, 403)
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.web.origins:
            await self.refuse(scope, receive, send, 403)
            return
        token = headers.get("x-csrf-token")
        content_type = headers.get("content-type", "")
        if token is None and content_type.startswith("application/x-www-form-urlencoded"):
            try:
                body = await _read_body(receive)
            except _TooLarge:
                await self.refuse(scope, receive, send, 413)
                return
            values = parse_qs(body.decode("latin-1"), max_num_fields=64).get("csrf_token")
            token = values[0] if values else None
            receive = _replay(body, receive)
        visitor: Visitor = scope["state"]["visitor"]
        expected = visitor.csrf_token(self.web.csrf_key)
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            await self.refuse(scope, receive, send, 403)
            return
        await self.app(scope, receive, send)
