"""The outermost of the app's own layers: a request id, the access log line and the HTTP
metrics.

Pure ASGI (no BaseHTTPMiddleware) so that it adds no task or copy per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ids import ordered_id
from ..json_api.responses import JsonAnswer
from .metrics import Metrics

if TYPE_CHECKING:
    from ..own_host import OwnHost
    from .scrape import MetricsListener

__all__ = [
    "METHODS",
    "AccessMiddleware",
    "RequestContext",
    "context_of",
    "method_of",
    "note_code",
    "route_template",
]

log = logging.getLogger("reapi_server.access")

#: Any other method is counted as OTHER: a label value must never come from the client.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


_INTERNAL_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [(b"content-type", b"application/json")],
}
_INTERNAL_BODY: Message = {
    "type": "http.response.body",
    "body": b'{"error":{"message":"the gateway failed to handle this request",'
    b'"type":"server_error","param":null,"code":"internal_error"}}',
}
#: A request still running when the drain after SIGTERM ends (`drain_seconds`) is cancelled
#: by uvicorn, whose own answer would be a plain-text 500.
_CUT_AT_SHUTDOWN_START: Message = {
    "type": "http.response.start",
    "status": 503,
    "headers": [
        (b"content-type", b"application/json"),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ],
}
_CUT_AT_SHUTDOWN_BODY: Message = {
    "type": "http.response.body",
    # Cut as its charge committed, a request was charged for this answer: say so, and how the
    # caller gets what it paid for (the record is written with the charge) without paying twice.
    "body": b'{"error":{"message":"this gateway instance shut down before the answer was sent;'
    b" retry with the same Idempotency-Key: a request that had finished, and was charged, is"
    b' answered from its record and not charged again (without one, a retry is a new request)",'
    b'"type":"server_error","param":null,"code":"server_shutting_down"}}',
}


@dataclass(slots=True)
class RequestContext:
    """What the handlers learn about a request that the access log should say (metadata)."""

    request_id: str
    provider: str | None = None
    attempts: int | None = None
    #: The catalog's id of the model served, once the catalog has resolved it (never as sent).
    model: str | None = None
    #: The error code of an answer that failed: its JSON error's, or (a stream, whose status
    #: went out as 200 with the head) its `error` event's. None for a success.
    code: str | None = None


def new_request_id() -> str:
    """`req_` and 35 hex digits: in time order (its usage row's key, its outputs' task id), 96
    random bits (an output's storage key holds it: with public S3 URLs, the key is the
    capability)."""
    return ordered_id("req", 24)


def context_of(scope: Scope) -> RequestContext:
    state: dict[str, Any] = scope.setdefault("state", {})
    context = state.get("reapi_context")
    if context is None:
        context = state["reapi_context"] = RequestContext(new_request_id())
    return context


def note_code(scope: Scope, code: str | None) -> None:
    """`code` for the access log line of this request (`RequestContext.code`): said by any
    answer that fails, wherever it is built. A request the access layer does not log (the
    metrics listener's) has no context, and gets none."""
    context = scope.get("state", {}).get("reapi_context")
    if context is not None:
        context.code = code


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/videos/{video_id}`), never the path itself."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def method_of(scope: Scope) -> str:
    return str(scope["method"]) if scope["method"] in METHODS else "OTHER"


#: A hot route's handling of a request: the answer for the access layer to send, or None
#: once it has sent its answer itself.
Answer = Callable[[Scope, Receive, Send], Awaitable[Response | None]]


class Shortcut(Protocol):
    """Routes served without the router (`openai_api.hot_routes`)."""

    def take(self, scope: Scope) -> Answer | None:
        """What answers this http request (the scope annotated as the router would have), or
        None: the request goes on through the app's stack."""


class AccessMiddleware:
    """The outermost of the app's own layers, and the only one on the hot path: it asks, in
    this order, the metrics listener (whose requests it answers and nothing more), the own
    host (which pins the Host header), then, once the request has its id, the hot routes (which
    serve the image endpoints without the router's layers). One layer rather than three: each
    layer is passed at every resumption of the request's coroutine."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        *,
        listener: MetricsListener | None = None,
        own_host: OwnHost | None = None,
        hot_routes: Shortcut | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.listener = listener
        self.own_host = own_host
        self.hot_routes = hot_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.listener is not None:
            answer = self.listener.answer(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        if self.own_host is not None:
            self.own_host.pin(scope)
        started = time.perf_counter()
        context = context_of(scope)
        hot = self.hot_routes.take(scope) if self.hot_routes is not None else None
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", context.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            try:
                if hot is None:
                    await self.app(scope, receive, send_with_id)
                else:
                    response = await hot(scope, receive, send_with_id)
                    if type(response) is JsonAnswer:
                        # Sent here as Starlette's `Response.__call__` sends it, with the
                        # request id: no wrapper around `send` for its two messages.
                        started_response, status = True, response.status_code
                        headers = [
                            *response.raw_headers,
                            (b"x-request-id", context.request_id.encode()),
                        ]
                        await send(
                            {"type": "http.response.start", "status": status, "headers": headers}
                        )
                        await send({"type": "http.response.body", "body": response.body})
                    elif response is not None:
                        await response(scope, receive, send_with_id)
            except asyncio.CancelledError:
                if not started_response:
                    context.code = "server_shutting_down"
                    await send_with_id(_CUT_AT_SHUTDOWN_START)
                    await send_with_id(_CUT_AT_SHUTDOWN_BODY)
                raise
            except Exception as exc:
                # Answer here so that no server further out prints the traceback, whose
                # exception message could hold request data; we log the type only.
                log.error("unhandled error", extra={"code": type(exc).__name__})
                if status == 500 and not started_response:
                    context.code = "internal_error"
                    await send_with_id(_INTERNAL_START)
                    await send_with_id(_INTERNAL_BODY)
        finally:
            self._record(scope, context, status, time.perf_counter() - started)

    def _record(self, scope: Scope, context: RequestContext, status: int, elapsed: float) -> None:
        route = route_template(scope)
        method = method_of(scope)
        requests, latency = self.metrics.http[method, route, status]
        requests.inc()
        latency.observe(elapsed)
        if route not in ("/metrics", "/healthz", "/readyz") and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "provider": context.provider,
                    "attempts": context.attempts,
                    "request_id": context.request_id,
                    "duration_ms": round(elapsed * 1000, 2),
                    "code": context.code,
                },
            )
