"""Who reads /metrics. Metrics show credit totals, providers and routes, so they are served on a
listener of their own (`metrics_listen`, loopback by default), which serves nothing else, and
on the main listener only to a bearer `metrics_token`: anyone else there gets the answer of an
unknown path. The listeners are told apart by the address a connection came in on (the
socket's, never a header's), so one app, in each worker, serves both."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from ..json_api.errors import error_response
from .metrics import Metrics

__all__ = ["MetricsListener", "MetricsRoute"]


def _exposition(metrics: Metrics) -> Response:
    return Response(metrics.exposition(), media_type=metrics.content_type)


class MetricsRoute(Route):
    """/metrics on the main listener, for the bearer of `metrics_token` only. For anyone else
    the route does not match at all, so the app answers as for any path it does not have
    (whatever answers those: the API's 404, or the web half's page)."""

    def __init__(self, metrics: Metrics, token: SecretStr) -> None:
        async def scrape(_: Request) -> Response:
            return _exposition(metrics)

        super().__init__("/metrics", scrape, methods=["GET"], include_in_schema=False)
        self._expected = f"Bearer {token.get_secret_value()}".encode()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and not self._presented(scope):
            return Match.NONE, {}
        return match, child

    def _presented(self, scope: Scope) -> bool:
        headers = scope.get("headers", ())
        presented = next((value for name, value in headers if name == b"authorization"), b"")
        return hmac.compare_digest(presented, self._expected)


class MetricsListener:
    """Asked first by the access layer: a request that came in on the metrics listener's port
    is answered here (and is neither logged nor counted)."""

    def __init__(self, *, metrics: Metrics, port: int | None) -> None:
        self.metrics = metrics
        self.port = port

    def answer(self, scope: Scope) -> Response | None:
        """The answer to an http request on the metrics listener; None on any other."""
        server = scope.get("server")
        if self.port is None or server is None or server[1] != self.port:
            return None
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            return _exposition(self.metrics)
        return error_response(404, "no such endpoint", code="http_404")
