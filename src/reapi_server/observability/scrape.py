"""Who reads /metrics. Metrics show credit totals, providers and routes, so they are served on a
listener of their own (`metrics_listen`, loopback by default), which serves nothing else, and
on the main listener only to a bearer `metrics_token`: anyone else there gets the answer of an
unknown path. The listeners are told apart by the address a connection came in on (the
socket's, never a header's), so one app, in each worker, serves both."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..openai_api.errors import error_response
from ..runtime import Runtime
from .metrics import Metrics

__all__ = ["MetricsListener", "router"]

router = APIRouter(include_in_schema=False)


def _exposition(metrics: Metrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics")
async def metrics_with_token(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    token = rt.settings.metrics_token
    presented = request.headers.get("authorization", "").encode()
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None
    if expected is None or not hmac.compare_digest(presented, expected):
        raise HTTPException(404)  # as for any unknown path
    return _exposition(rt.metrics)


class MetricsListener:
    """Outermost: a request that came in on the metrics listener's port is answered here."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, port: int | None) -> None:
        self.app = app
        self.metrics = metrics
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] == "http" else None
        if self.port is None or server is None or server[1] != self.port:
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            response = _exposition(self.metrics)
        else:
            response = error_response(404, "no such endpoint", code="http_404")
        await response(scope, receive, send)
