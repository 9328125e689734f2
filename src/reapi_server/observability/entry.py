"""`EnteredAtAccess`: the API's FastAPI application, whose HTTP requests enter at its access
layer.

FastAPI and Starlette put layers of their own outside the app's middleware: `FastAPI.__call__`
(its native telemetry), `Starlette.__call__`, the server error layer, FastAPI's exception
telemetry and its body size limit. For an HTTP request of the gateway none of them does
anything: the access layer (`middleware.AccessMiddleware`, the outermost of the app's own)
answers every error itself, so none reaches them; FastAPI's telemetry is off
(`fastapi_telemetry`); and no body limit of FastAPI's is set (each endpoint reads its body under
the gateway's own). Yet each is passed at every resumption of the request's coroutine, and the
error layer wraps every message sent. So an HTTP request goes straight to the access layer,
with the scope annotated as those layers would have; any other scope (the lifespan) takes the
whole stack.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .fastapi_telemetry import WITHOUT_NATIVE_TELEMETRY
from .middleware import AccessMiddleware

__all__ = ["EnteredAtAccess"]

#: How far below the stack's top the access layer may be: the server error layer, FastAPI's
#: exception telemetry and its body limit stand above it.
_OUTER_LAYERS = 4


class EnteredAtAccess(FastAPI):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options, **WITHOUT_NATIVE_TELEMETRY)
        self._access: AccessMiddleware | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._access = None
        if getattr(self, "max_body_size", None) is None:  # else its limit layer has work
            layer: Any = stack
            for _ in range(_OUTER_LAYERS):
                layer = getattr(layer, "app", None)
                if isinstance(layer, AccessMiddleware):
                    self._access = layer
                    break
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.root_path:
            await super().__call__(scope, receive, send)
            return
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        if self._access is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette's own entry sets it (`request.app`)
        await self._access(scope, receive, send)
