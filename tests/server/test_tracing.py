"""OpenTelemetry tracing (issue 13): off by default and then absent (no tracer, no module
imported); on, a span per /v1 request with children for each upstream attempt, storage call and
database unit of work, every attribute on the one allowlist and no marker of a request's body,
query, headers or `user` in any span. Spans are read with the SDK's in-memory exporter, and once
as OTLP/HTTP protobuf posted to a receiver on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError
from tests.server.fakes import KEYS, PNG
from tests.server.helpers import auth
from tests.server.otlp_collector import Collector, running_collector
from tests.server.test_zero_retention import MARKERS, PROMPT, USER, _exercise

from reapi_server.config import Settings
from reapi_server.observability import logging as logs
from reapi_server.observability.tracing.attributes import (
    ALLOWED,
    FROM_LOGS,
    LOGS_ONLY,
    MAX_TEXT,
    SPANS_ONLY,
)

ROOT = Path(__file__).parents[2]
IMAGE = {"model": "gpt-image-2", "prompt": "a lighthouse"}
#: A caller's W3C trace context: trace 0af7…, parent span b7ad…, sampled.
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def traced(make_gateway):
    """Factory: a gateway with tracing on; its exported spans (past the allowlist) and its raw
    spans (what the code set, before the allowlist)."""

    async def start(**overrides: object):
        exported = InMemorySpanExporter()
        gateway = await make_gateway(tracing=True, span_exporter=exported, **overrides)
        raw = InMemorySpanExporter()
        gateway.rt.tracing.add_processor(SimpleSpanProcessor(raw))
        return gateway, exported, raw

    return start


def _root(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    (root,) = [span for span in spans if span.parent is None]
    return root


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_request_is_one_tree_of_metadata_spans(traced, database_url):
    gateway, exported, _ = await traced(database_url=database_url)
    _, key = await gateway.account()
    response = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=auth(key))
    assert response.status_code == 200
    spans = exported.get_finished_spans()
    root = _root(spans)
    assert root.name == "POST /v1/images/generations" and root.kind == SpanKind.SERVER
    assert dict(root.attributes) == {
        "http.request.method": "POST",
        "http.route": "/v1/images/generations",
        "http.response.status_code": 200,
        "reapi.request_id": response.headers["x-request-id"],
        "reapi.model": "gpt-image-2",
        "reapi.provider": "primary",
        "reapi.attempts": 1,
    }
    for child in spans:
        if child is not root:
            assert child.parent.span_id == root.context.span_id, child.name
            assert child.context.trace_id == root.context.trace_id

    (attempt,) = _named(spans, "upstream attempt")
    assert attempt.kind == SpanKind.CLIENT
    described = dict(attempt.attributes)
    assert described.pop("reapi.duration_ms") > 0
    assert described == {
        "reapi.provider": "primary",
        "reapi.route": "primary/gpt-image-2",
        "server.address": "primary.test",
        "reapi.attempt.number": 1,
        "reapi.attempt.failover": False,
        "reapi.attempt.hedge": False,
        "reapi.attempt.outcome": "ok",
        "reapi.attempt.code": "ok",
    }
    (put,) = _named(spans, "storage put")
    assert dict(put.attributes) == {
        "reapi.storage.backend": "local",
        "reapi.storage.key_kind": "outputs/req",
        "reapi.storage.bytes": len(PNG),
        "reapi.outcome": "ok",
    }
    grouped = [
        s for s in _named(spans, "db transaction") if s.attributes["reapi.db.kind"] == "grouped"
    ]
    assert len(grouped) == 2  # the hold, then the settlement with the output and usage rows
    dialect = "postgresql" if database_url else "sqlite"
    for transaction in grouped:
        assert transaction.attributes["db.system.name"] == dialect
        assert transaction.attributes["reapi.db.batch_size"] >= 1
        assert transaction.attributes["reapi.outcome"] == "ok"


async def test_failover_is_two_attempt_spans_with_their_outcomes(traced):
    gateway, exported, _ = await traced()
    _, key = await gateway.account()
    gateway.upstream.faults = {"primary.test": "500"}
    response = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=auth(key))
    assert response.status_code == 200
    spans = exported.get_finished_spans()
    failed, served = _named(spans, "upstream attempt")
    assert failed.status.status_code == StatusCode.ERROR
    assert {k: v for k, v in failed.attributes.items() if k != "reapi.duration_ms"} == {
        "reapi.provider": "primary",
        "reapi.route": "primary/gpt-image-2",
        "server.address": "primary.test",
        "reapi.attempt.number": 1,
        "reapi.attempt.failover": False,
        "reapi.attempt.hedge": False,
        "reapi.attempt.outcome": "error",
        "reapi.attempt.code": "upstream_server_error",
        "http.response.status_code": 500,
    }
    assert served.attributes["reapi.provider"] == "backup"
    assert served.attributes["reapi.attempt.number"] == 2
    assert served.attributes["reapi.attempt.failover"] is True
    assert served.attributes["reapi.attempt.outcome"] == "ok"
    root = _root(spans)
    assert root.attributes["reapi.provider"] == "backup" and root.attributes["reapi.attempts"] == 2


async def test_no_marker_reaches_a_span_and_every_attribute_is_allowlisted(traced, media_host):
    """The zero-retention tour (every path a request can take) with tracing on, plus markers
    in a query string, in headers, in a path and in an untrusted tracestate. No marker, API key
    or provider key is in any span, raw or exported (as the OTLP protobuf bytes that would be
    sent); and every attribute the code sets is on the allowlist: a new one fails here until
    it is allowlisted, rather than being dropped unnoticed."""
    gateway, exported, raw = await traced()
    gateway.rt.fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    _, key = await gateway.account(credits=100_000)
    await _exercise(gateway, key, media_host)
    query, header, path = "MARKER-query-3e9d01", "MARKER-header-77ac2b", "MARKER-path-c0ffee"
    response = await gateway.client.post(
        f"/v1/images/generations?{query}={query}",
        json={"model": "gpt-image-2", "prompt": PROMPT, "user": USER},
        headers={
            **auth(key),
            "x-caller-note": header,
            "user-agent": header,
            "traceparent": TRACEPARENT,
            "tracestate": f"vendor={header}",
        },
    )
    assert response.status_code == 200
    assert (await gateway.client.get(f"/v1/videos/{path}", headers=auth(key))).status_code == 404
    by_url = {**IMAGE, "response_format": "url"}
    answer = await gateway.client.post("/v1/images/generations", json=by_url, headers=auth(key))
    output = httpx.URL(answer.json()["data"][0]["url"])
    assert (
        await gateway.client.get(output.raw_path.decode(), headers=auth(key))
    ).status_code == 200

    secrets = [*MARKERS, query.encode(), header.encode(), path.encode(), key.encode()]
    secrets += [k.encode() for k in KEYS.values()]
    sent = encode_spans(exported.get_finished_spans()).SerializeToString()
    seen = [span.to_json().encode() for span in raw.get_finished_spans()]
    assert len(seen) > 100 and len(sent) > 10_000  # the tour was traced
    for secret in secrets:
        assert secret not in sent, secret
        for span in seen:
            assert secret not in span, (secret, span[:300])
    names = {name for span in raw.get_finished_spans() for name in span.attributes}
    assert names <= ALLOWED, f"not on the allowlist: {sorted(names - ALLOWED)}"
    assert all(not span.events for span in raw.get_finished_spans())
    kinds = {span.name for span in raw.get_finished_spans()}
    assert {"upstream attempt", "storage put", "storage open", "db transaction", "db read"} <= kinds
    outcomes = {s.attributes.get("reapi.attempt.outcome") for s in raw.get_finished_spans()}
    assert {"ok", "error", "cancelled"} <= outcomes  # success, failures, a cancelled request


def test_the_spans_allowlist_is_the_logs():
    """A field the logs gain is decided for spans too (a name of its own there, or none)."""
    assert set(FROM_LOGS) | LOGS_ONLY == set(logs.FIELDS) and not set(FROM_LOGS) & LOGS_ONLY
    assert ALLOWED == {*FROM_LOGS.values(), *SPANS_ONLY}
    assert len(set(FROM_LOGS.values())) == len(FROM_LOGS)  # one span name for each field


async def test_what_is_not_allowlisted_never_leaves(traced):
    gateway, exported, _ = await traced()
    with gateway.rt.tracing.tracer.start_as_current_span("careless") as span:
        span.set_attribute("url.full", f"http://primary.test/v1?prompt={PROMPT}")
        span.set_attribute("reapi.model", "x" * MAX_TEXT + PROMPT)  # allowlisted, too long
        span.set_attribute("reapi.attempts", [1, 2])  # allowlisted, not a plain value
        span.add_event("body", {"prompt": PROMPT})
        span.record_exception(ValueError(PROMPT))
        span.set_status(Status(StatusCode.ERROR, PROMPT))
    (sent,) = exported.get_finished_spans()
    assert dict(sent.attributes) == {"reapi.model": "x" * MAX_TEXT}
    assert sent.events == () and sent.status.status_code == StatusCode.ERROR
    assert PROMPT.encode() not in encode_spans([sent]).SerializeToString()


async def test_a_traceparent_counts_only_when_trusted_and_never_goes_upstream(traced):
    for trusted in (False, True):
        gateway, exported, _ = await traced(tracing_trust_traceparent=trusted)
        _, key = await gateway.account()
        headers = {**auth(key), "traceparent": TRACEPARENT, "tracestate": "vendor=x"}
        response = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=headers)
        assert response.status_code == 200
        (root,) = [s for s in exported.get_finished_spans() if s.kind == SpanKind.SERVER]
        continued = root.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
        assert continued is trusted
        if trusted:
            assert root.parent.span_id == 0xB7AD6B7169203331 and root.parent.is_remote
            assert root.context.trace_state.to_header() == "vendor=x"
        else:
            assert root.parent is None and not root.context.trace_state
    for sent in gateway.upstream.headers:
        assert "traceparent" not in sent and "tracestate" not in sent


async def test_the_sample_ratio_leaves_requests_untraced(traced):
    gateway, exported, _ = await traced(tracing_sample_ratio=0.0)
    _, key = await gateway.account()
    response = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=auth(key))
    assert response.status_code == 200 and gateway.upstream.calls
    assert exported.get_finished_spans() == ()  # nor any child of the unsampled request


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as running:
        yield running


async def test_the_otlp_exporter_posts_protobuf_to_the_collector(collector, make_gateway):
    # A base address: /v1/traces is added, as OpenTelemetry does with its own variable.
    gateway = await make_gateway(tracing=True, tracing_endpoint=collector.endpoint)
    _, key = await gateway.account()
    body = {**IMAGE, "prompt": PROMPT, "user": USER}
    response = await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))
    assert response.status_code == 200
    assert await anyio.to_thread.run_sync(gateway.rt.tracing.provider.force_flush)
    assert collector.posts
    for post in collector.posts:
        assert post.path == "/v1/traces" and post.content_type == "application/x-protobuf"
        assert PROMPT.encode() not in post.body and USER.encode() not in post.body
        for resource_spans in post.request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "reapi-gateway"
    names = {span.name for span in collector.spans()}
    assert {"POST /v1/images/generations", "upstream attempt", "storage put"} <= names


def test_the_endpoint_setting():
    base = Settings(tracing_endpoint="http://collector:4318")
    assert base.tracing_traces_url == "http://collector:4318/v1/traces"
    full = Settings(tracing_endpoint="https://otlp.example.com/api/traces")
    assert full.tracing_traces_url == "https://otlp.example.com/api/traces"
    assert Settings().tracing_traces_url is None  # OpenTelemetry's own variables decide
    with pytest.raises(ValidationError, match="tracing_endpoint is an http"):
        Settings(tracing_endpoint="collector:4318")


def _clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REAPI_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


#: A gateway with default settings serves an image; then which OpenTelemetry modules are loaded.
DEFAULT_GATEWAY = """
import asyncio, sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from tests.conftest import two_host_catalog
from tests.server.fakes import BASE_URLS, KEYS, FakeUpstream
from tests.server.helpers import auth, make_account

from reapi_server.app import create_app
from reapi_server.config import Settings


async def main(data_dir):
    settings = Settings(data_dir=data_dir, provider_keys=KEYS, provider_base_urls=BASE_URLS,
                        run_background_tasks=False, secret_key="s", metrics_listen="off")
    upstream = FakeUpstream()
    app = create_app(settings, catalog=two_host_catalog(),
                     http_client=httpx.AsyncClient(transport=upstream.transport()))
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        _, key = await make_account(rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            body = {"model": "gpt-image-2", "prompt": "p"}
            response = await client.post("/v1/images/generations", json=body, headers=auth(key))
            assert response.status_code == 200, response.text
        print(rt.tracing, rt.engine.observer, type(rt.db).__name__, type(rt.store).__name__)
        print(sorted(m.cls.__name__ for m in app.user_middleware))
    print(" ".join(sorted(sys.modules)))


asyncio.run(main(Path(sys.argv[1])))
"""


def _python(*args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env or _clean_environment(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _opentelemetry(modules: str) -> set[str]:
    return {m for m in modules.split() if m.split(".")[0] == "opentelemetry"}


#: What the gateway's web framework imports of OpenTelemetry by itself (recent FastAPI depends
#: on opentelemetry-api for its own, here disabled, telemetry).
FASTAPI_ALONE = "import sys, fastapi; print(' '.join(sorted(sys.modules)))"


def test_off_by_default_no_tracer_and_nothing_of_opentelemetry_imported(tmp_path):
    runtime, middleware, modules = _python("-c", DEFAULT_GATEWAY, str(tmp_path / "data"))
    assert runtime == "None None Database LocalDiskStore"
    assert "TracingMiddleware" not in middleware and "AccessMiddleware" in middleware
    (baseline,) = _python("-c", FASTAPI_ALONE)
    assert _opentelemetry(modules) <= _opentelemetry(baseline)  # nothing beyond FastAPI's own
    loaded = set(modules.split())
    for heavy in ("opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf", "requests"):
        assert heavy not in loaded, heavy
    assert not [m for m in loaded if m.startswith("reapi_server.observability.tracing")]


#: What an installation without the `otel` extra lacks: OpenTelemetry's SDK and exporter (its
#: API may be there all the same: recent FastAPI depends on it).
HIDE_OTEL = """
import sys
sys.modules["opentelemetry.sdk"] = None  # what import meets where a package is not installed
sys.modules["opentelemetry.exporter"] = None
"""

#: The gateway's command line as if the `otel` extra were not installed.
WITHOUT_OTEL = (
    HIDE_OTEL
    + """
from reapi_server._entry import main
sys.argv = ["reapi-server", *sys.argv[1:]]
main()
"""
)

#: An application embedding the gateway, as if the `otel` extra were not installed.
EMBEDDED_WITHOUT_OTEL = (
    HIDE_OTEL
    + """
from reapi_server.app import create_app
from reapi_server.config import Settings
from reapi_server.extras import MissingExtraError
try:
    create_app(Settings(data_dir=sys.argv[1], tracing=True))
except MissingExtraError as error:
    print(error)
"""
)


def test_tracing_without_the_extra_is_one_line_naming_it(tmp_path):
    env = {**_clean_environment(), "REAPI_TRACING": "true"}
    data = ["--data-dir", str(tmp_path / "data")]
    expected = (
        "tracing = true needs the 'otel' extra (opentelemetry.sdk, "
        "opentelemetry.exporter.otlp.proto.http not installed): pip install 'reapi[otel]'"
    )
    for command in (["check-config", *data], ["serve", *data, "--port", "0"]):
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_OTEL, *command],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=env,
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stderr.splitlines() == [f"error: {expected}"], done.stderr
    embedded = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EMBEDDED_WITHOUT_OTEL), str(tmp_path / "e")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=_clean_environment(),
    )
    assert embedded.stdout.strip() == expected, embedded.stderr


#: With a global tracer and logger provider configured by someone else (an agent such as
#: opentelemetry-instrument, FastAPI's FASTAPI_OTEL_AUTO_CONFIGURE), a request with a marker in
#: its query, to the API and to a web page; then what reached those providers.
GLOBAL_PROVIDERS = """
import asyncio, sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
_logs.set_logger_provider(logger_provider)

from reapi_server.app import create_app
from reapi_server.config import Settings


async def main(data_dir):
    settings = Settings(data_dir=data_dir, run_background_tasks=False, secret_key="s",
                        metrics_listen="off")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            await client.post("/v1/images/generations?q=MARKER-query", json={"prompt": "p"})
            await client.get("/login?next=MARKER-query")
            await client.get("/api/keys?q=MARKER-query")  # the management API
    print(len(spans.get_finished_spans()), len(logs.get_finished_logs()))


asyncio.run(main(Path(sys.argv[1])))
"""


def test_every_fastapi_application_is_made_without_its_telemetry():
    """A new application (a sub-app mounted somewhere) is made the one way, or its requests
    would reach FastAPI's own telemetry."""
    made_directly = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "reapi_server").rglob("*.py")
        if re.search(r"\bFastAPI\(", path.read_text("utf-8"))
        and path.name != "fastapi_telemetry.py"
    ]
    assert made_directly == []


def test_no_other_tracer_sees_a_request(tmp_path):
    """FastAPI's own telemetry (url.path, url.query, exception messages) stays off whoever
    configures OpenTelemetry's global providers: the gateway's spans are the allowlisted ones."""
    env = {**_clean_environment(), "FASTAPI_OTEL_AUTO_CONFIGURE": "true"}
    assert _python("-c", GLOBAL_PROVIDERS, str(tmp_path / "data"), env=env) == ["0 0"]
