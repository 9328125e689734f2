"""The gateway's upstream calls on aiohttp: a transport for the SDK's engine.

Routing, failover, breakers and the adapters are the SDK's own (`reapi.core.AsyncEngine`); only
the HTTP exchange (the engine's pluggable `transport`) differs. Measured on the 2-core bench
machine, one upstream call cost 0.65 to 1.1 ms of CPU through httpx (its connection pool checks
every pooled connection's socket on each request, so the cost grows with concurrency) and 0.1 to
0.2 ms through aiohttp, whose parser is C and whose pool hands out an idle connection in constant
time.

Deadlines measure the upstream, not the gateway's own queue: the first-byte deadline runs from
the moment the request has been written (aiohttp's `sock_read`, reset by every read), and the
connect deadline covers the TCP/TLS handshake only. Waiting for the event loop, or for a free
connection in the pool, does not count against the upstream.

A kept-alive connection the upstream closed just as a request went out on it (its idle timeout
fired) fails that request before any byte of answer: such a failure on a reused connection is
tried again once, on another connection, before anyone (the breaker, the failover loop) hears of
it. aiohttp does that itself for idempotent methods; a POST is ours to retry.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import json
import ssl
import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import aiohttp
import certifi
import httpx
import orjson
import yarl

from reapi.core import (
    AsyncEngine,
    AsyncFetcher,
    AttemptObserver,
    answer_too_large,
    connection_error,
    detached,
)
from reapi.providers import UpstreamRequest
from reapi.router import MAX_ANSWER_BYTES, Router

from .pinned_connect import AddressCheck, VettingResolver

__all__ = ["AiohttpTransport", "aiohttp_engine", "encode_body"]

_POOL_LIMIT = 512
_KEEPALIVE_SECONDS = 30.0
#: Methods aiohttp already sends again once when a connection breaks (RFC 9112 §9.3.1.1).
_RETRIED_BY_AIOHTTP = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_CLOSED_BY_PEER = frozenset({errno.ECONNRESET, errno.EPIPE})
#: JSON bodies as httpx writes them (one encoder, not one made per call as `json.dumps` does).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: Values orjson writes byte for byte as `_JSON` does, or refuses (a key not a string, a lone
#: surrogate, an integer past 64 bits): not floats, which the two write differently (`1e+16`
#: against `1e16`), nor what `json` refuses and orjson writes (dataclasses, dates, enums).
_SAME_IN_ORJSON = frozenset({str, int, bool, type(None), dict, list})


@lru_cache(maxsize=1024)
def _parsed(url: str) -> yarl.URL:
    """A URL parsed once: a route's endpoint is the same for every request (aiohttp would
    parse the text again each time)."""
    return yarl.URL(url)


def encode_body(request: UpstreamRequest) -> tuple[bytes | None, dict[str, str]]:
    """The request body and the headers to send, byte for byte what httpx would send: JSON is
    dumped the way httpx dumps it, and multipart forms are encoded by httpx itself."""
    headers = dict(request.headers)
    if request.files or request.data:
        built = httpx.Request(
            request.method,
            request.url,
            headers=headers,
            files=list(request.files) or None,
            data=_form_fields(request.data),
        )
        body = built.read()
        headers["Content-Type"] = built.headers["content-type"]
        return body, headers
    if request.json is not None:
        if "content-type" not in map(str.lower, headers):
            headers["Content-Type"] = "application/json"
        return _dumps(request.json), headers
    return request.content, headers


def _dumps(value: Any) -> bytes:
    """`_JSON.encode(value).encode()`, by orjson when it writes the same bytes (~1 against
    ~3.6 us for an image request's body): what it refuses is left to `json`, which writes it
    or raises its own error."""
    if _same_in_orjson(value):
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass
    return _JSON.encode(value).encode()


def _same_in_orjson(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            item = item.values()
        elif kind is not list:
            if kind not in _SAME_IN_ORJSON:
                return False
            continue
        for inner in item:
            inner_kind = type(inner)
            if inner_kind is dict or inner_kind is list:
                pending.append(inner)
            elif inner_kind not in _SAME_IN_ORJSON:
                return False
    return True


def _form_fields(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    if not pairs:
        return None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


#: Whether the current request went out on a pooled connection: set by `_PoolConnector.connect`,
#: which runs in the task of the request (aiohttp's trace signals cost ten times as much).
_REUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("reapi_upstream_reused")


class _PoolConnector(aiohttp.TCPConnector):
    """A connector that tells each request (`_REUSED`) whether its connection served an earlier
    one: a connection is remembered, weakly, once it has been handed out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handed_out: weakref.WeakSet[object] = weakref.WeakSet()

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[aiohttp.tracing.Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp passes it by this name)
    ) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        _REUSED.set(protocol in self._handed_out)
        self._handed_out.add(protocol)
        return connection


def _stale(exc: BaseException) -> bool:
    """The peer closed or reset the connection (not a timeout, not a refused connect)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    if not isinstance(exc, aiohttp.ClientOSError):
        return False
    # A connection whose close had arrived but not yet been read when it left the pool fails
    # the body's write: aiohttp says so with an errno-less ClientOSError, the reset as cause.
    closed = isinstance(exc.__cause__, ConnectionResetError | BrokenPipeError)
    return closed or exc.errno in _CLOSED_BY_PEER


def _headers_of(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Lower-case names, repeated headers joined with ", " (as httpx's `dict(headers)`)."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class AiohttpTransport:
    """The engine's transport on one pooled `aiohttp.ClientSession` (see the module's notes).

    The engine's httpx client stays for anything else that uses it directly (streaming a large
    output into storage), and caller URLs still go only through the SSRF-checking `fetcher`."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        #: Set before the first request: sees the addresses each name resolved to, before they
        #: are connected to or cached, and may refuse them with `OSError`
        #: (`result_urls.ResultUrls.host_check`, through `pinned_connect.VettingResolver`).
        self.address_check: AddressCheck | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            check = self.address_check
            connector = _PoolConnector(
                resolver=VettingResolver(check) if check is not None else None,
                limit=_POOL_LIMIT,
                limit_per_host=0,
                keepalive_timeout=_KEEPALIVE_SECONDS,
                ssl=ssl.create_default_context(cafile=certifi.where()),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # One session serves every account: it must never carry cookies between them.
                cookie_jar=aiohttp.DummyCookieJar(),
                # trust_env would read ~/.netrc and the proxy variables on a worker thread for
                # every request; a gateway that needs a proxy sets upstream_client = "httpx".
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    def _timeout(self, first_byte: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(first_byte)
        if timeout is None:
            timeout = self._timeouts[first_byte] = aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=first_byte, sock_read=first_byte
            )
        return timeout

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def exchange(
        self,
        request: UpstreamRequest,
        provider: str,
        first_byte: float,
        body: float,
        limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, dict[str, str], bytes]:
        data, headers = encode_body(request)
        retry_stale = request.method not in _RETRIED_BY_AIOHTTP
        while True:
            _REUSED.set(False)
            phase = "waiting for the first byte"
            try:
                # The outer deadline only bounds an upstream that drips: reads are timed per read.
                # asyncio's own timeout (aiohttp runs on asyncio only): a third of anyio's CPU.
                async with asyncio.timeout(first_byte + body):
                    async with self._session_now().request(
                        request.method,
                        _parsed(request.url),
                        headers=headers,
                        data=data,
                        allow_redirects=False,
                        timeout=self._timeout(first_byte),
                    ) as response:
                        phase = "reading the body"
                        content = await _read_within(response, limit)
                        if content is None:  # the rest unread: the connection is not reused
                            break
                        return response.status, _headers_of(response), content
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # Before any byte of answer, on a connection from the pool: stale. Once.
                before_answer = phase != "reading the body"
                if retry_stale and _REUSED.get() and before_answer and _stale(exc):
                    retry_stale = False
                    continue
                error = connection_error(exc, provider, phase)
            # aiohttp's errors keep the request (`request_info.headers` with the provider's key):
            # the error raised instead chains nothing.
            raise detached(error)
        raise answer_too_large(provider, limit)


async def _read_within(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The answer's body (decompressed, as aiohttp gives it), or None once it passes `limit`
    bytes: by its Content-Length, before reading any of it, or by what was read (a compressed
    answer may grow past what it declared)."""
    if (response.content_length or 0) > limit:
        return None
    if response.content_length is not None and response.headers.get("content-encoding") is None:
        return await response.read()  # exactly the declared length: aiohttp's one read
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def aiohttp_engine(
    router: Router,
    client: httpx.AsyncClient | None = None,
    fetcher: AsyncFetcher | None = None,
    observer: AttemptObserver | None = None,
    client_setup: Callable[[httpx.AsyncClient], object] | None = None,
    address_check: AddressCheck | None = None,
) -> AsyncEngine:
    """The SDK's engine with its upstream requests on aiohttp (`address_check`: see
    `AiohttpTransport.address_check`; `client_setup`: `AsyncEngine`'s)."""
    transport = AiohttpTransport()
    transport.address_check = address_check
    return AsyncEngine(router, client, fetcher, transport, observer, client_setup=client_setup)
