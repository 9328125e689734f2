"""Fetching a caller's URL under the rules of `_urls`: resolve once, connect to what was vetted.

Pinning: each hop's host is resolved once and every address vetted; the connection layer
(httpcore) then gets a network backend that can connect only to the vetted address of the exact
host string it is asked for. A second DNS answer (rebinding) is never asked for, while the Host
header, TLS SNI and the certificate check still use the name. Proxies from the environment are
not used (a proxy would resolve the name itself), and each fetch has its own connection pool,
so a TLS connection made for one name never serves another. Sync and async twins share the
rules and differ only in how they resolve, send and keep the deadline.

The async twin also POSTs (the gateway's webhooks) under the same rules, to the one URL given:
a redirect is the receiver's answer, never followed, and only the answer's head and the first
`MAX_ANSWER_BYTES` of its body are read.

Nothing of a fetch is logged: httpcore's DEBUG traces name the host and print response headers
(a redirect's Location is a caller's URL), so they are dropped while a fetch runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx

from ._detached import translated, translated_async
from ._exceptions import InvalidRequestError
from ._interrupts import closed_unless_interrupted
from ._payload import File
from ._urls import (
    ByteBudget,
    Hop,
    UrlPolicy,
    Walk,
    fetch_failed,
    first_hop,
    not_allowed,
    timed_out,
    vet_addresses,
)

__all__ = ["MAX_ANSWER_BYTES", "AsyncFetcher", "PostAnswer", "Resolver", "SyncFetcher"]

#: host, port → addresses. The default asks the system resolver (getaddrinfo).
Resolver = Callable[[str, int], Sequence[str]]

_ERRORS: dict[type[Exception], str] = {
    httpcore.ConnectError: "the connection failed",
    httpcore.ReadError: "the connection broke",
    httpcore.WriteError: "the connection broke",
    httpcore.RemoteProtocolError: "the answer was not valid HTTP",
    httpcore.LocalProtocolError: "the request could not be sent",
    httpcore.UnsupportedProtocol: "unsupported protocol",
}
#: What a fetch's transport may raise: each becomes a refusal naming the parameter.
_FAILURES: tuple[type[Exception], ...] = (TimeoutError, httpcore.TimeoutException, *_ERRORS)
_FETCHING: ContextVar[bool] = ContextVar("reapi_fetching", default=False)
#: What a post reads of its answer's body at most (the status is what counts).
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """How the receiver of a post answered: its status, and its `Retry-After` as sent."""

    status: int
    retry_after: str | None = None


class _DropWhileFetching(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _FETCHING.get()


_DROP = _DropWhileFetching()
for _name in ("httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_DROP)


@contextlib.contextmanager
def _unlogged() -> Iterator[None]:
    token = _FETCHING.set(True)
    try:
        yield
    finally:
        _FETCHING.reset(token)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _core_url(hop: Hop) -> httpcore.URL:
    url = hop.url
    return httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )


def _failure(exc: BaseException, param: str) -> InvalidRequestError:
    if isinstance(exc, TimeoutError | httpcore.TimeoutException):
        return timed_out(param)
    for kind, why in _ERRORS.items():
        if isinstance(exc, kind):
            return fetch_failed(param, why)
    return fetch_failed(param, "the connection failed")


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos]


def _system_resolve(host: str, port: int) -> list[str]:
    return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def system_resolve_async(host: str, port: int) -> list[str]:
    return _addresses(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def _timeouts(policy: UrlPolicy, remaining: float) -> dict[str, dict[str, float]]:
    read = max(min(policy.timeout, remaining), 0.001)
    connect = min(policy.connect_timeout, read)
    return {"timeout": {"connect": connect, "read": read, "write": read, "pool": read}}


def _answer_header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()[:64]
    return None


#: host (exactly as httpcore will ask for it) → its vetted addresses, in the resolver's order.
Pins = dict[str, tuple[str, ...]]
_CONNECT_ERRORS = (httpcore.ConnectError, httpcore.ConnectTimeout)


def _vetted(pins: Pins, host: str) -> tuple[str, ...]:
    addresses = pins.get(host)
    if not addresses:
        raise httpcore.ConnectError("refused: this host was not vetted")
    return addresses


class _Pinned(httpcore.NetworkBackend):
    """Connects only to vetted addresses (the next one when one does not answer), looked up by
    the host httpcore asks for."""

    def __init__(self, pins: Pins, inner: httpcore.NetworkBackend) -> None:
        self._pins = pins
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        *others, last = _vetted(self._pins, host)
        options = (timeout, local_address, socket_options)
        for address in others:
            with contextlib.suppress(*_CONNECT_ERRORS):
                return self._inner.connect_tcp(address, port, *options)
        return self._inner.connect_tcp(last, port, *options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("refused: no unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


async def connect_in_turn(
    backend: httpcore.AsyncNetworkBackend,
    addresses: Sequence[str],
    port: int,
    timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    local_address: str | None = None,
    socket_options: Iterable[Any] | None = None,
) -> httpcore.AsyncNetworkStream:
    """`backend` connected to each address in turn, the next when one does not answer; the last
    one's failure is raised. For network backends that pin what they connect to."""
    *others, last = addresses
    options = (timeout, local_address, socket_options)
    for address in others:
        with contextlib.suppress(*_CONNECT_ERRORS):
            return await backend.connect_tcp(address, port, *options)
    return await backend.connect_tcp(last, port, *options)


class _AsyncPinned(httpcore.AsyncNetworkBackend):
    """The async twin of `_Pinned`."""

    def __init__(self, pins: Pins, inner: httpcore.AsyncNetworkBackend) -> None:
        self._pins = pins
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = _vetted(self._pins, host)
        return await connect_in_turn(
            self._inner, addresses, port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class SyncFetcher:
    """Fetches caller URLs from blocking code. Thread-safe: each fetch has its own pool.

    `resolver` and `network_backend` are for tests (a fixed DNS answer, a loopback connector);
    production uses the system resolver and plain sockets."""

    def __init__(
        self,
        policy: UrlPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.policy = policy or UrlPolicy()
        self._resolver = resolver
        self._backend = network_backend or httpcore.SyncBackend()

    def _pin(self, hop: Hop, param: str) -> tuple[str, ...]:
        if hop.address is not None:
            return (hop.address,)
        resolve = self._resolver or _system_resolve
        addresses = translated(
            lambda: resolve(hop.host, hop.port), OSError, lambda _: not_allowed(param)
        )
        return vet_addresses(addresses, self.policy, param)

    def fetch(
        self,
        url: str,
        *,
        accept: frozenset[str],
        param: str,
        budget: ByteBudget | None = None,
    ) -> File:
        """The file at `url`, or an `InvalidRequestError` naming `param` (never the URL).
        `budget`: what the bodies of every fetch of one request may add up to."""
        walk = Walk(url, accept, param, self.policy, budget)
        return translated(lambda: self._follow(walk), _FAILURES, lambda e: _failure(e, param))

    def _follow(self, walk: Walk) -> File:
        deadline = time.monotonic() + self.policy.timeout
        pins: Pins = {}
        backend = _Pinned(pins, self._backend)
        pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=backend, retries=0
        )
        # Not `with pool`: after Ctrl-C its close may wait forever (`reapi._interrupts`).
        with _unlogged(), closed_unless_interrupted(pool.close):
            while True:
                hop = walk.hop
                pins[hop.host] = self._pin(hop, walk.param)
                with pool.stream(
                    "GET",
                    _core_url(hop),
                    headers=hop.request_headers(walk.accept),
                    extensions=_timeouts(self.policy, deadline - time.monotonic()),
                ) as response:
                    reader = walk.answer(response.status, response.headers)
                    if reader is not None:
                        for chunk in response.iter_stream():
                            reader.feed(chunk)
                            if time.monotonic() > deadline:
                                raise timed_out(walk.param)
                        return reader.file(walk.url)


class AsyncFetcher:
    """Fetches caller URLs without blocking the event loop; one deadline for the whole fetch."""

    def __init__(
        self,
        policy: UrlPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy or UrlPolicy()
        self._resolver = resolver
        self._backend = network_backend or httpcore.AnyIOBackend()

    async def _pin(self, hop: Hop, param: str) -> tuple[str, ...]:
        if hop.address is not None:
            return (hop.address,)

        async def resolve() -> Sequence[str]:
            if self._resolver is not None:
                return self._resolver(hop.host, hop.port)
            return await system_resolve_async(hop.host, hop.port)

        addresses = await translated_async(resolve, OSError, lambda _: not_allowed(param))
        return vet_addresses(addresses, self.policy, param)

    async def fetch(
        self,
        url: str,
        *,
        accept: frozenset[str],
        param: str,
        budget: ByteBudget | None = None,
    ) -> File:
        """The file at `url`, or an `InvalidRequestError` naming `param` (never the URL).
        `budget`: what the bodies of every fetch of one request may add up to."""
        walk = Walk(url, accept, param, self.policy, budget)
        return await translated_async(
            lambda: self._follow(walk), _FAILURES, lambda e: _failure(e, param)
        )

    async def _follow(self, walk: Walk) -> File:
        pins: Pins = {}
        backend = _AsyncPinned(pins, self._backend)
        extensions = _timeouts(self.policy, self.policy.timeout)
        with _unlogged(), anyio.fail_after(self.policy.timeout):
            async with httpcore.AsyncConnectionPool(
                ssl_context=_ssl_context(), network_backend=backend, retries=0
            ) as pool:
                while True:
                    hop = walk.hop
                    pins[hop.host] = await self._pin(hop, walk.param)
                    async with pool.stream(
                        "GET",
                        _core_url(hop),
                        headers=hop.request_headers(walk.accept),
                        extensions=extensions,
                    ) as response:
                        reader = walk.answer(response.status, response.headers)
                        if reader is not None:
                            async for chunk in response.aiter_stream():
                                reader.feed(chunk)
                            return reader.file(walk.url)

    async def check(self, url: str, *, param: str) -> None:
        """Refuse `url` (an `InvalidRequestError` naming `param`) unless a post to it would be
        sent now: its form passes and its host resolves to allowed addresses only."""
        hop = first_hop(url, self.policy, param)
        await self._pin(hop, param)

    async def post(
        self,
        url: str,
        content: bytes,
        *,
        headers: Sequence[tuple[str, str]],
        param: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a delivery attempt has its own bound
    ) -> PostAnswer:
        """POST `content` to `url` (resolved and vetted now) and return how it was answered;
        an `InvalidRequestError` naming `param` when it could not be sent or answered in time.
        `timeout` bounds the whole post (the policy's fetch timeout by default)."""
        hop = first_hop(url, self.policy, param)
        deadline = self.policy.timeout if timeout is None else timeout
        return await translated_async(
            lambda: self._post(hop, content, headers, param, deadline),
            _FAILURES,
            lambda e: _failure(e, param),
        )

    async def _post(
        self,
        hop: Hop,
        content: bytes,
        headers: Sequence[tuple[str, str]],
        param: str,
        deadline: float,
    ) -> PostAnswer:
        pins: Pins = {}
        backend = _AsyncPinned(pins, self._backend)
        sent = [
            (b"Host", hop.url.netloc),
            (b"User-Agent", b"reapi-webhooks"),
            (b"Content-Length", str(len(content)).encode()),
            *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers),
        ]
        with _unlogged(), anyio.fail_after(deadline):
            pins[hop.host] = await self._pin(hop, param)
            async with (
                httpcore.AsyncConnectionPool(
                    ssl_context=_ssl_context(), network_backend=backend, retries=0
                ) as pool,
                pool.stream(
                    "POST",
                    _core_url(hop),
                    headers=sent,
                    content=content,
                    extensions=_timeouts(self.policy, deadline),
                ) as response,
            ):
                read = 0
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
                return PostAnswer(response.status, _answer_header(response.headers, b"retry-after"))
