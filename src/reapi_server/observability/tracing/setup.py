"""Tracing started: the tracer provider (its sampler, resource and exporter) and what every
traced part of the gateway uses to make its spans.

The provider is the gateway's own, never OpenTelemetry's global one: only the spans made here
reach the exporter, all through the allowlist (`export.AllowlistExporter`). Spans are posted
over OTLP/HTTP from the SDK's export thread, in batches, never from the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anyio
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from reapi import __version__

from ...config import Settings
from .attributes import Value
from .export import AllowlistExporter

__all__ = ["DEFAULT_SERVICE_NAME", "Tracing", "mark_failed", "start_tracing"]

DEFAULT_SERVICE_NAME = "reapi-gateway"

_PROPAGATOR = TraceContextTextMapPropagator()
#: The only request headers tracing reads, and only when the operator trusts them.
_TRACE_HEADERS = (b"traceparent", b"tracestate")


def mark_failed(span: Span, error: BaseException) -> None:
    """Say how a span's work ended when it raised: the exception's type, never its message."""
    if isinstance(error, anyio.get_cancelled_exc_class()):
        span.set_attribute("reapi.outcome", "cancelled")
        return
    span.set_attribute("reapi.outcome", "error")
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR))


class Tracing:
    def __init__(self, provider: TracerProvider, *, trust_traceparent: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("reapi_server", __version__)
        self.trust_traceparent = trust_traceparent

    def parent_of(self, headers: list[tuple[bytes, bytes]]) -> Context:
        """Where a request's span starts: a trace of its own, or, when the operator trusts the
        header, the trace of the caller's W3C `traceparent` (with its `tracestate`)."""
        if not self.trust_traceparent:
            return Context()
        carrier: dict[str, str] = {}
        for name, value in headers:
            if name in _TRACE_HEADERS:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
        return _PROPAGATOR.extract(carrier, context=Context())

    @contextmanager
    def child(
        self, name: str, attributes: Mapping[str, Value], kind: SpanKind = SpanKind.INTERNAL
    ) -> Iterator[Span | None]:
        """A span for one call made while a traced request runs (None outside one, or when the
        request is not sampled: then nothing is made). Never the current span: nothing nests
        under a storage or database call."""
        if not trace.get_current_span().is_recording():
            yield None
            return
        span = self.tracer.start_span(name, kind=kind, attributes=attributes)
        try:
            yield span
        except BaseException as error:
            mark_failed(span, error)
            raise
        else:
            span.set_attribute("reapi.outcome", "ok")
        finally:
            span.end()

    def add_processor(self, processor: SpanProcessor) -> None:
        self.provider.add_span_processor(processor)

    async def aclose(self) -> None:
        """Send what is still queued and stop the export thread (it may wait on the network)."""
        await anyio.to_thread.run_sync(self.provider.shutdown)


def service_name(settings: Settings) -> str:
    return (
        settings.tracing_service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    )


def start_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing:
    """The gateway's tracer provider. `exporter`: where spans go instead of OTLP/HTTP (tests
    give the SDK's in-memory exporter); spans are then handed over as each ends."""
    resource = Resource.create(
        {"service.name": service_name(settings), "service.version": __version__}
    )
    sampler = ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    processor: SpanProcessor
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(endpoint=settings.tracing_traces_url)
        processor = BatchSpanProcessor(AllowlistExporter(otlp))
    else:
        processor = SimpleSpanProcessor(AllowlistExporter(exporter))
    provider.add_span_processor(processor)
    return Tracing(provider, trust_traceparent=settings.tracing_trust_traceparent)
