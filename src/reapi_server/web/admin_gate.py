"""Everything under /admin is hidden from anyone but an admin: a 404 page for any method on
any path there, before routing (so not even a 405 confirms that a route exists). The pages
check again (`guards.require_admin`), which is also how they learn who acts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .context import visitor_of
from .guards import is_admin

__all__ = ["ADMIN_PREFIX", "AdminGate"]

ADMIN_PREFIX = "/admin"

NotFoundPage = Callable[[Request], Awaitable[Response]]


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class AdminGate:
    def __init__(self, app: ASGIApp, not_found: NotFoundPage) -> None:
        self.app = app
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_admin_path(scope["path"]):
            request = Request(scope, receive)
            if not is_admin(visitor_of(request).user):
                response = await self.not_found(request)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
