"""FastAPI's own OpenTelemetry instrumentation, switched off.

Recent FastAPI releases trace and log every request themselves as soon as anything configures
OpenTelemetry's global providers (an agent such as `opentelemetry-instrument`, or
FASTAPI_OTEL_AUTO_CONFIGURE=true, with which FastAPI sets up OTLP export itself): their spans
carry the request's path and query string and honour any incoming `traceparent`, their log
records carry exception messages and tracebacks. None of that passes the gateway's allowlist, so
the gateway's FastAPI applications turn it off; the gateway's own tracing
(`observability.tracing`) is the only one left, and never uses the global providers.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

__all__ = ["WITHOUT_NATIVE_TELEMETRY", "fastapi_without_telemetry"]


def _without_native_telemetry() -> dict[str, Any]:
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}  # a FastAPI from before its native telemetry
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": {**off, "auto_configure": False}}


#: The keyword arguments that switch it off.
WITHOUT_NATIVE_TELEMETRY = _without_native_telemetry()


def fastapi_without_telemetry(**options: Any) -> FastAPI:
    """A FastAPI application with its own telemetry off: how the gateway makes every one (the
    API, the web half, the management API mounted in it)."""
    return FastAPI(**options, **WITHOUT_NATIVE_TELEMETRY)
