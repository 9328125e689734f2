"""An OTLP/HTTP trace collector on loopback, for the tracing tests: it answers each export as a
collector does and keeps what was posted (path, content type, body, gzip undone), decoded with
OpenTelemetry's own protobuf messages."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["Collector", "Post", "running_collector"]


@dataclass(frozen=True)
class Post:
    path: str
    content_type: str
    body: bytes

    @property
    def request(self) -> ExportTraceServiceRequest:
        return ExportTraceServiceRequest.FromString(self.body)


@dataclass
class Collector:
    port: int
    posts: list[Post] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """A base address, as an operator gives it: the exporter adds /v1/traces."""
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> Iterator[Span]:
        for post in self.posts:
            for resource_spans in post.request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans


@contextmanager
def running_collector() -> Iterator[Collector]:
    """The collector while it runs."""
    collector = Collector(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            collector.posts.append(Post(self.path, self.headers["content-type"], body))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
