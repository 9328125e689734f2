"""Who is asking: resolves the session cookie to a live session and makes sure the browser has
a browser id (the CSRF cookie), for every page request of the web half (not static files)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .consent_gate import serves_data_rights
from .context import Visitor, WebContext
from .cookies import new_browser_id, well_formed

__all__ = ["VisitorMiddleware"]


def _cookie_headers(response: Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in response.raw_headers if k == b"set-cookie"]


class VisitorMiddleware:
    def __init__(self, app: ASGIApp, web: WebContext) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        policy = self.web.cookies
        cookies = HTTPConnection(scope).cookies
        session_cookie = cookies.get(policy.session_name)
        current = None
        if session_cookie is not None and well_formed(session_cookie):
            current = await self.web.identity.current(session_cookie)
        browser_id = well_formed(cookies.get(policy.csrf_name))
        # A sign-in waiting for its second factor, or for the consent of a person an operator
        # made the account of (or of a policy's new version): not a session yet for any page
        # but the one it waits on, and, owing only consent, the pages of the person's rights
        # over their data (`consent_gate.serves_data_rights`).
        pending = current is not None and (
            current.awaiting_second_factor
            or (current.consent_due and not serves_data_rights(scope["path"]))
        )
        visitor = Visitor(
            session=None if pending else current,
            browser_id=browser_id or new_browser_id(),
            new_browser_id=browser_id is None,
            stale_session_cookie=session_cookie is not None and current is None,
            session_cookie=session_cookie,
            pending=current if pending else None,
        )
        scope.setdefault("state", {})["visitor"] = visitor

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                already = " ".join(headers.getlist("set-cookie"))
                extra = Response()
                if visitor.new_browser_id and f"{policy.csrf_name}=" not in already:
                    policy.set_browser_id(extra, visitor.browser_id)
                if visitor.stale_session_cookie and f"{policy.session_name}=" not in already:
                    policy.clear_session(extra)
                for _, value in _cookie_headers(extra):
                    headers.append("set-cookie", value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, send_with_cookies)
