"""The span of each /v1 request, current while the request runs (so that its upstream attempts,
storage and database calls become its children).

Named and described by the method and the route's template, the answer's status, the gateway's
request id and what the handlers learnt (`RequestContext`: model, provider, attempts); never
the path, its query string, a header or a body. Pure ASGI, and in the stack only when tracing is
on. Inside the access middleware, which made the request id and answers for unhandled errors.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..middleware import context_of, method_of, route_template
from .attributes import Value
from .setup import Tracing

__all__ = ["TracingMiddleware"]

#: The API's paths; the web pages, health and metrics are not traced.
_API = "/v1/"


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(_API):
            await self.app(scope, receive, send)
            return
        method = method_of(scope)
        status = 500  # what the access middleware answers when nothing was

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.tracer.start_as_current_span(
            f"{method} /v1",
            context=self.tracing.parent_of(scope["headers"]),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
            # The SDK would keep the exception's message and traceback: the type is said below.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except BaseException as error:
                span.set_attribute("error.type", type(error).__name__)
                raise
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                context = context_of(scope)
                described: dict[str, Value | None] = {
                    "http.route": route,
                    "http.response.status_code": status,
                    "reapi.request_id": context.request_id,
                    "reapi.model": context.model,
                    "reapi.provider": context.provider,
                    "reapi.attempts": context.attempts,
                }
                span.set_attributes({k: v for k, v in described.items() if v is not None})
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
