"""`HotRoutes`: the /v1 image endpoints, served straight from the access layer.

Between the access layer and a `DirectRoute` stand Starlette's exception middleware, FastAPI's
exit stack, the app's router, the included router's and the route's own dispatch: six layers a
request passes twice (in, and at each resumption of its coroutine), with nothing to do on the
hot path. A POST to an image endpoint's exact path is taken from the access layer to the route
here instead; everything else (another method, a trailing slash, a root path) goes the long
way, so FastAPI's 405 and redirects answer as before.

What the skipped layers did that the route needs is done here: the scope names the route (the
access log and metrics label requests with its template), and a raised error becomes its
answer through the app's own exception handlers, looked up as Starlette's exception middleware
looks them up. An error no handler takes goes on to the access layer, which answers it as it
answers any unhandled error. With tracing on, the request's span is made here as it would be
further in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from .direct_request import DirectRequest
from .direct_route import DirectRoute
from .error_answers import answer_with, handler_for

if TYPE_CHECKING:  # OpenTelemetry is imported only when tracing is on
    from ..observability.middleware import Answer
    from ..observability.tracing.setup import Tracing

__all__ = ["HotRoutes"]


class HotRoutes:
    def __init__(
        self, app: FastAPI, routes: Iterable[BaseRoute], *, tracing: Tracing | None = None
    ) -> None:
        self._app = app
        self._routes = {
            route.path: route
            for route in routes
            if isinstance(route, DirectRoute) and route.methods and "{" not in route.path
        }
        self._serve: Answer = self._answer
        if tracing is not None:
            from ..observability.tracing.middleware import TracingMiddleware

            traced = TracingMiddleware(self._call, tracing=tracing)

            async def answer_traced(scope: Scope, receive: Receive, send: Send) -> None:
                await traced(scope, receive, send)

            self._serve = answer_traced

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._routes)

    def take(self, scope: Scope) -> Answer | None:
        """For a request one of the routes serves: what answers it (the answer, for the access
        layer to send; with tracing on, the request served in its span), the scope annotated
        as the router would have. None for any other request."""
        route = self._routes.get(scope["path"])
        if route is None or scope["method"] not in (route.methods or ()) or scope.get("root_path"):
            return None
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        scope["router"] = self._app.router
        return self._serve

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> Response:
        """The endpoint's answer, or the app's handler's answer to what it raised."""
        route: DirectRoute = scope["route"]
        request = DirectRequest(scope, receive, send)
        try:
            response: Response = await route.endpoint(**await route.arguments(request))
        except Exception as exc:
            handler = handler_for(self._app, exc)
            if handler is None:
                raise
            response = await answer_with(handler, request, exc)
        return response

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope, receive, send)
        await response(scope, receive, send)
