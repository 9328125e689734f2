"""A span for each upstream attempt, from the engine's `AttemptObserver` hooks: the provider, the
route, the provider's host and port (from the configuration, never a path or query), how the
attempt ended (outcome class, stable code, upstream status), how long it took and whether it was
a failover or a hedge. A child of the request's span; outside a traced request, nothing."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from reapi.catalog import Route
from reapi.core import Attempt, AttemptEnd

from .attributes import Value
from .setup import Tracing

__all__ = ["AttemptSpans"]


def _address(host: str | None) -> dict[str, Value]:
    if not host:
        return {}
    parts = urlsplit(f"//{host}")
    address: dict[str, Value] = {"server.address": parts.hostname or host}
    try:
        if parts.port is not None:
            address["server.port"] = parts.port
    except ValueError:
        pass
    return address


class AttemptSpans:
    def __init__(self, tracing: Tracing, host_of: Callable[[Route], str | None]) -> None:
        self._tracer = tracing.tracer
        self._host_of = host_of

    def on_attempt_start(self, attempt: Attempt) -> None:
        if not trace.get_current_span().is_recording():
            return
        route = attempt.route
        attributes: dict[str, Value] = {
            "reapi.provider": route.provider,
            "reapi.route": route.key,
            "reapi.attempt.number": attempt.number,
            "reapi.attempt.failover": attempt.failover,
            "reapi.attempt.hedge": attempt.hedge,
            **_address(attempt.host or self._host_of(route)),
        }
        attempt.state = self._tracer.start_span(
            "upstream attempt", kind=SpanKind.CLIENT, attributes=attributes
        )

    def on_attempt_end(self, attempt: Attempt, end: AttemptEnd) -> None:
        span = attempt.state
        if not isinstance(span, Span):
            return
        span.set_attribute("reapi.attempt.outcome", end.outcome)
        span.set_attribute("reapi.attempt.code", end.code)
        span.set_attribute("reapi.duration_ms", end.elapsed_ms)
        if end.status is not None:
            span.set_attribute("http.response.status_code", end.status)
        if end.outcome in ("error", "crashed"):
            span.set_status(Status(StatusCode.ERROR))
        span.end()
