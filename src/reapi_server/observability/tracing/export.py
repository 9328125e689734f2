"""The gate every span passes before any exporter sees it.

A span leaves with its name, ids, parent, kind, times, resource and scope, its status code (never
a status description, which the SDK would fill with an exception's message), the attributes that
`attributes.admit` lets through, and its links without their attributes. Events are dropped
whole: the gateway records none, and the SDK's exception events carry messages and tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from .attributes import admit

__all__ = ["AllowlistExporter", "admitted"]


def admitted(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` with only what may leave the process."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=admit(span.attributes),
        events=(),
        links=tuple(Link(link.context) for link in span.links),
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class AllowlistExporter(SpanExporter):
    """Hands `inner` the admitted copies of the spans, nothing else."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([admitted(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
