"""A loopback HTTP server that plays the public internet in tests of caller URLs.

Every name resolves (through `MediaHost.resolve`) to `PUBLIC`, an address that looks public, and
the network backends connect `PUBLIC` to this server on 127.0.0.1. So
`http://media.example.com:PORT/a.png` is fetched under the default, secure policy without any
test reaching the internet, and a redirect from it to 127.0.0.1 is refused exactly as it would
be in production. `dials` records every address the fetcher asked to connect to.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

from reapi import UrlPolicy
from reapi._fetch import AsyncFetcher, SyncFetcher

PUBLIC = "93.184.215.14"
LOOPBACK = "127.0.0.1"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Send Content-Length (False: the body ends when the connection closes).
    length: bool = True
    #: Keep sending `body` again and again until the client hangs up.
    endless: bool = False
    #: Seconds between chunks of 8 bytes.
    drip: float = 0.0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host = self.server.host
        if self.command == "GET":
            host.requests.append((self.path, dict(self.headers.items())))
        answer = host.routes.get(self.path.split("?", 1)[0], Answer(404, body=b"not found"))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.length and not answer.endless:
            self.send_header("Content-Length", str(len(answer.body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self._body(answer)
        except (BrokenPipeError, ConnectionResetError):
            host.hung_up.set()  # the client stopped reading: what a cut-off looks like
        self.close_connection = True

    def do_POST(self) -> None:
        """A webhook receiver: records the request (path, headers, body), then answers as GET
        does."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.host.posts.append((self.path, dict(self.headers.items()), body))
        self.do_GET()

    def _body(self, answer: Answer) -> None:
        if answer.drip:
            for start in range(0, len(answer.body), 8):
                time.sleep(answer.drip)
                self.wfile.write(answer.body[start : start + 8])
                self.wfile.flush()
            return
        self.wfile.write(answer.body)
        while answer.endless:
            self.wfile.write(answer.body or b"\0" * 65536)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    host: MediaHost


class MediaHost:
    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: (path, headers, body) of every POST.
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.lookups: list[str] = []
        self.dials: list[tuple[str, int]] = []
        self.hung_up = threading.Event()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.host = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> MediaHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests set up ---------------------------------------------------------------
    def serve(self, path: str, body: bytes = b"", status: int = 200, **kwargs: Any) -> str:
        """Answer `path`; returns its URL on a public-looking name."""
        self.routes[path] = Answer(status, body=body, **kwargs)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.serve(path, status=status, headers={"Location": location})

    def url(self, path: str, host: str = "media.example.com") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def loopback_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- what the fetcher is given ---------------------------------------------------------
    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [PUBLIC]

    def sync_fetcher(self, policy: UrlPolicy | None = None, **kwargs: Any) -> SyncFetcher:
        kwargs.setdefault("resolver", self.resolve)
        return SyncFetcher(policy, network_backend=_SyncLoopback(self), **kwargs)

    def async_fetcher(self, policy: UrlPolicy | None = None, **kwargs: Any) -> AsyncFetcher:
        kwargs.setdefault("resolver", self.resolve)
        return AsyncFetcher(policy, network_backend=_AsyncLoopback(self), **kwargs)

    def _target(self, host: str, port: int) -> tuple[str, int]:
        self.dials.append((host, port))
        if host not in (PUBLIC, LOOPBACK):
            raise httpcore.ConnectError("the test network reaches only the media host")
        return LOOPBACK, self.port


class _SyncLoopback(httpcore.SyncBackend):
    def __init__(self, host: MediaHost) -> None:
        self._host = host

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address, real_port = self._host._target(host, port)
        return super().connect_tcp(address, real_port, timeout, local_address, socket_options)


class _AsyncLoopback(httpcore.AnyIOBackend):
    def __init__(self, host: MediaHost) -> None:
        self._host = host

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address, real_port = self._host._target(host, port)
        return await super().connect_tcp(address, real_port, timeout, local_address, socket_options)
