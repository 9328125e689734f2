"""Tracing end to end: `reapi-server serve` as a process with `REAPI_TRACING=true`, exporting
OTLP/HTTP to a collector on loopback, in front of provider simulators on real sockets.

Each request carries one unique marker in its prompt, `user`, query string, headers (its own,
User-Agent, Cookie, Idempotency-Key, an untrusted traceparent's tracestate), multipart file
names and path. What the collector received (raw and decoded) holds the marker nowhere: no span
name, attribute, event, link, status, resource or scope. And each request is one trace: a SERVER
span with no parent, its request id, and the upstream attempts, storage and database calls as
its children."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from tests.server.fakes import PNG
from tests.server.fleet import catalog_file
from tests.server.otlp_collector import Collector, running_collector
from tests.server.served import ServedGateway, served_gateway

from reapi.testing import Fault, OpenAISimulator, SimulatorSpec, run_simulators

SIM_KEY = "sk-tracing-sim"
MARKER = f"MARKER{secrets.token_hex(8)}"
#: A caller's W3C trace context, which this gateway does not trust (the default).
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as running:
        yield running


@pytest.fixture
def simulators():
    running = run_simulators(
        {name: SimulatorSpec(OpenAISimulator(SIM_KEY), "/v1") for name in ("a", "b", "video")}
    )
    yield running
    running.stop()


def _value(value: AnyValue) -> object:
    return getattr(value, value.WhichOneof("value"))


def _attributes(span: Span) -> dict[str, object]:
    return {attribute.key: _value(attribute.value) for attribute in span.attributes}


class Sent:
    """The requests of the test, each with what to look for in its trace."""

    def __init__(self, gateway: ServedGateway) -> None:
        self.client = httpx.Client(base_url=gateway.base_url, timeout=30)
        self.auth = {"authorization": f"Bearer {gateway.key}"}
        #: request id → (route template, children's names the trace must have)
        self.expected: dict[str, tuple[str, set[str]]] = {}

    def headers(self, **more: str) -> dict[str, str]:
        return {
            **self.auth,
            "x-caller-note": MARKER,
            "user-agent": f"agent/{MARKER}",
            "cookie": f"session={MARKER}",
            "traceparent": TRACEPARENT,
            "tracestate": f"vendor={MARKER}",
            **more,
        }

    def send(
        self, method: str, path: str, status: int, route: str, children: set[str], **kw: object
    ) -> httpx.Response:
        response = self.client.request(method, path, **kw)  # type: ignore[arg-type]
        assert response.status_code == status, response.text
        self.expected[response.headers["x-request-id"]] = (route, children)
        return response


def _exercise(sent: Sent, simulators) -> None:
    query = f"?{MARKER}={MARKER}&note={MARKER}"
    generated = {"model": "gpt-image-2", "prompt": f"a {MARKER}", "user": MARKER}
    ok = {"upstream attempt", "storage put", "db transaction"}
    # An image, answered by the first route.
    sent.send(
        "POST",
        f"/v1/images/generations{query}",
        200,
        "/v1/images/generations",
        ok,
        json=generated,
        headers=sent.headers(**{"idempotency-key": MARKER}),
    )
    # An image whose first route fails: two attempts, the second a failover.
    simulators.servers["a"].faults.set(Fault.ERROR_500, count=1)
    failed_over = sent.send(
        "POST",
        f"/v1/images/generations{query}",
        200,
        "/v1/images/generations",
        ok,
        json={**generated, "response_format": "url"},
        headers=sent.headers(),
    )
    # The output by its URL: a storage read.
    output = httpx.URL(failed_over.json()["data"][0]["url"])
    sent.send(
        "GET",
        output.raw_path.decode(),
        200,
        "/v1/files/{file_id}/content",
        {"storage open"},
        headers=sent.headers(),
    )
    # An edit: the marker in the multipart fields and file names too.
    sent.send(
        "POST",
        f"/v1/images/edits{query}",
        200,
        "/v1/images/edits",
        ok,
        data={"model": "gpt-image-2", "prompt": MARKER, "user": MARKER},
        files=[("image[]", (f"{MARKER}.png", PNG, "image/png"))],
        headers=sent.headers(),
    )
    # A video: the submission is traced (its polls run in the background, outside requests).
    video = sent.send(
        "POST",
        f"/v1/videos{query}",
        200,
        "/v1/videos",
        {"upstream attempt", "db transaction"},
        json={"model": "sim-video", "prompt": MARKER, "size": "1280x720", "user": MARKER},
        headers=sent.headers(),
    )
    job = video.json()["id"]
    deadline = time.monotonic() + 30
    while sent.client.get(f"/v1/videos/{job}", headers=sent.auth).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the video did not complete"
        time.sleep(0.2)
    sent.send(
        "GET",
        f"/v1/videos/{job}/content{query}",
        200,
        "/v1/videos/{video_id}/content",
        {"storage open"},
        headers=sent.headers(),
    )
    # Refusals: a model the catalog does not know, a job that does not exist, a path that is
    # no route at all. The marker is what the caller sent in each.
    sent.send(
        "POST",
        f"/v1/images/generations{query}",
        404,
        "/v1/images/generations",
        set(),
        json={**generated, "model": MARKER},
        headers=sent.headers(),
    )
    sent.send(
        "GET",
        f"/v1/videos/{MARKER}{query}",
        404,
        "/v1/videos/{video_id}",
        set(),
        headers=sent.headers(),
    )
    sent.send("GET", f"/v1/{MARKER}{query}", 404, "unmatched", set(), headers=sent.headers())


def test_no_marker_in_what_the_collector_receives_and_each_request_is_one_trace(
    tmp_path: Path, collector: Collector, simulators
) -> None:
    urls = simulators.provider_urls
    catalog = catalog_file(
        tmp_path / "catalog.json",
        {"primary": urls["a"], "backup": urls["b"], "slowvideo": urls["video"]},
    )
    env = {
        "REAPI_TRACING": "true",
        "REAPI_TRACING_ENDPOINT": collector.endpoint,
        "REAPI_CATALOG_PATH": str(catalog),
        "REAPI_PROVIDER_KEYS__PRIMARY": SIM_KEY,
        "REAPI_PROVIDER_KEYS__BACKUP": SIM_KEY,
        "REAPI_PROVIDER_KEYS__SLOWVIDEO": SIM_KEY,
        "REAPI_POLL_INTERVAL": "0.2",
    }
    with served_gateway(tmp_path / "data", env=env) as gateway:
        sent = Sent(gateway)
        _exercise(sent, simulators)
        sent.client.close()
    # The gateway has stopped (SIGTERM): its last spans were sent as it shut down.
    assert "Application shutdown complete." in gateway.text, gateway.text
    assert MARKER not in gateway.text

    assert collector.posts
    for post in collector.posts:
        assert post.path == "/v1/traces" and post.content_type == "application/x-protobuf"
        assert MARKER.encode() not in post.body
        decoded = MessageToJson(post.request)  # names, attributes, events, links, resources
        assert MARKER.lower() not in decoded.lower()
        for resource_spans in post.request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "reapi-gateway"
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "reapi_server"

    spans = list(collector.spans())
    assert all(not span.events and not span.links for span in spans)
    assert all(not span.status.message for span in spans)
    roots = {
        _attributes(s)["reapi.request_id"]: s for s in spans if s.kind == Span.SPAN_KIND_SERVER
    }
    assert set(sent.expected) <= set(roots)
    for request_id, (route, children) in sent.expected.items():
        root = roots[request_id]
        # The caller's traceparent was not trusted: a trace of the gateway's own.
        assert root.parent_span_id == b"" and root.trace_state == ""
        assert root.trace_id != bytes.fromhex(TRACEPARENT.split("-")[1])
        assert _attributes(root)["http.route"] == route
        below = [s for s in spans if s.trace_id == root.trace_id and s is not root]
        assert all(s.parent_span_id == root.span_id for s in below), route
        assert children <= {s.name for s in below}, (route, sorted(s.name for s in below))
        for child in below:
            assert root.start_time_unix_nano <= child.start_time_unix_nano
            assert child.end_time_unix_nano <= root.end_time_unix_nano

    failover = [r for r in roots.values() if _attributes(r).get("reapi.attempts") == 2]
    (root,) = failover
    first, second = sorted(
        (s for s in spans if s.trace_id == root.trace_id and s.name == "upstream attempt"),
        key=lambda s: s.start_time_unix_nano,
    )
    assert first.kind == second.kind == Span.SPAN_KIND_CLIENT
    assert first.status.code == Status.STATUS_CODE_ERROR
    assert _attributes(first)["reapi.attempt.failover"] is False
    assert _attributes(second)["reapi.attempt.failover"] is True
    described = _attributes(first)
    assert (
        described["reapi.provider"] == "primary" and described["http.response.status_code"] == 500
    )
    assert described["reapi.attempt.outcome"] == "error"
    assert _attributes(second)["reapi.provider"] == "backup"
    assert _attributes(second)["reapi.attempt.outcome"] == "ok"
