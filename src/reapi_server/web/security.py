"""Headers on every response of the web half (never on /v1: it is not mounted there).

A strict Content-Security-Policy: scripts and styles from this origin only, no inline script
or style, no framing, forms post only here. Pages with personal data are not cached."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityHeadersMiddleware", "content_security_policy"]


def content_security_policy(
    *,
    script: Sequence[str] = (),
    frame: Sequence[str] = (),
    connect: Sequence[str] = (),
    media: Sequence[str] = (),
    form: Sequence[str] = (),
) -> str:
    """The strict policy, plus the given sources: `script` (script-src), `frame` (frame-src,
    else none at all), `connect` (connect-src), `media` (style, image and font sources), `form`
    (form-action: where a form's answer may redirect, e.g. a sign-in provider). Only what an
    operator enables adds any (`web.embeds`)."""

    def sources(*base: str, extra: Sequence[str]) -> str:
        return " ".join(dict.fromkeys((*base, *extra)))

    directives = [
        "default-src 'none'",
        "script-src " + sources("'self'", extra=script),
        "style-src " + sources("'self'", extra=media),
        "img-src " + sources("'self'", "data:", extra=media),
        "font-src " + sources("'self'", extra=media),
        "connect-src " + sources("'self'", extra=connect),
    ]
    if frame:
        directives.append("frame-src " + sources(extra=frame))
    directives += [
        "form-action " + sources("'self'", extra=form),
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    return "; ".join(directives)


#: The policy of an installation with no embeds.
CSP = content_security_policy()


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool, csp: str = CSP) -> None:
        self.app = app
        self.headers = [
            ("content-security-policy", csp),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("x-content-type-options", "nosniff"),
            ("cross-origin-opener-policy", "same-origin"),
            ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if https:
            self.headers.append(("strict-transport-security", "max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers[name] = value
                if static:
                    headers.setdefault("cache-control", "public, max-age=3600")
                else:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
