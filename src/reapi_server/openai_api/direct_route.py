"""`DirectRoute`: a /v1 route whose handler hands the endpoint its dependencies itself.

FastAPI's own route handler solves the endpoint's dependency graph on every request (cache keys,
scopes, the security scheme, two exit stacks, a per-route exception wrapper): on the gateway's hot
path (`POST /v1/images/generations`) that machinery cost more CPU than the authentication and rate
limit it ran. A direct route knows the only dependencies its endpoints may declare (`Rt`,
`Caller`, `Context` and the `Request`) and calls them in order, then the endpoint. The route is
still an `APIRoute`: its OpenAPI operation (the bearer scheme, the body schema, the answers) is
built from the same signature, and anything else an endpoint declares is refused when the route is
made, so a new parameter cannot be silently left unsolved.

What is not done here is done as before, further out: a raised error becomes its answer in the
app's exception middleware (the same handlers a FastAPI route calls), and a method the route does
not serve gets FastAPI's own 405. The image routes are usually not reached through the router at
all: the access layer hands their requests to `hot_routes` directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..observability.middleware import context_of
from ..runtime import Runtime
from .dependencies import authorized, caller, request_context, runtime, runtime_of
from .direct_request import DirectRequest

__all__ = ["DirectRoute"]

#: How a dependency's value is had, from the request and the runtime (read once a request: it
#: is an attribute lookup on Starlette's `State` that fails before `__getattr__`, ~1.6 us):
#: awaited (the caller: authentication, rate limit) or read at once (the runtime, the
#: request's context), without a coroutine of its own.
Resolver = tuple[Callable[[Request, Runtime], Any], bool]


def _caller(request: Request, rt: Runtime) -> Awaitable[Any]:
    # The bearer scheme's own dependency (`auto_error=False`) only declares it in the OpenAPI
    # document: it reads the header `caller` reads itself, and never refuses.
    return authorized(request, rt)


def _runtime(request: Request, rt: Runtime) -> Runtime:
    return rt


def _request(request: Request, rt: Runtime) -> Request:
    return request


def _context(request: Request, rt: Runtime) -> Any:
    return context_of(request.scope)


_RESOLVERS: dict[Callable[..., Any], Resolver] = {
    runtime: (_runtime, False),
    caller: (_caller, True),
    request_context: (_context, False),
}


def _resolvers_of(dependant: Dependant) -> tuple[tuple[str, Resolver], ...]:
    """(parameter name, how to get its value), in the endpoint's order of dependencies."""
    declared = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
    )
    others = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if any(declared) or any(name is not None for name in others):
        raise TypeError(
            f"{dependant.call!r}: a direct route takes only Request, Rt, Caller and Context"
        )
    resolvers: list[tuple[str, Resolver]] = []
    if dependant.request_param_name is not None:
        resolvers.append((dependant.request_param_name, (_request, False)))
    for sub in dependant.dependencies:
        resolver = _RESOLVERS.get(sub.call) if sub.call is not None else None
        if resolver is None or sub.name is None:
            raise TypeError(f"{dependant.call!r}: {sub.call!r} is not a direct dependency")
        resolvers.append((sub.name, resolver))
    return tuple(resolvers)


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._resolvers = _resolvers_of(self.dependant)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # FastAPI's 405
            return
        request = DirectRequest(scope, receive, send)
        response: Response = await self.endpoint(**await self.arguments(request))
        await response(scope, receive, send)

    async def arguments(self, request: Request) -> dict[str, Any]:
        """The endpoint's arguments, its dependencies resolved in order. The caller awaits the
        endpoint itself: one coroutine less that each resumption of the request passes."""
        rt = runtime_of(request)
        arguments = {}
        for name, (resolve, awaited) in self._resolvers:
            value = resolve(request, rt)
            arguments[name] = await value if awaited else value
        return arguments
