"""`H1Transport`: the engine's upstream calls as plain HTTP/1.1 on asyncio, parsed by httptools.

An upstream exchange on aiohttp costs about 90 us of CPU on the 2-core bench machine (a
`ClientRequest` and `ClientResponse` with their header multidicts, a task to write the body, a
timer rescheduled on every read, the payload and stream objects); the same exchange written as
one `transport.write` of prebuilt bytes and read by httptools' C parser costs about 25. On the
image hot path that difference is about a tenth of the gateway's CPU per request.

What it speaks: HTTP/1.1 over TCP or TLS (certifi's roots), one request at a time per
connection, kept alive in a pool per origin and reused last-in first-out; bodies as
Content-Length, chunked or up to the connection's close. It asks for `identity` and still takes
a gzip or deflate answer (decompressed within the answer bound). No proxies, no redirects
(the engine follows none), no cookies: what the gateway's aiohttp session did not do either.

A host's addresses are tried as RFC 8305 asks (`upstream_connect`), as aiohttp does.

Deadlines as the aiohttp transport has them: connecting within `first_byte`; from the moment the
request is written, each read within `first_byte` of the last (the first byte too); the whole
answer within `first_byte + body`. A connection from the pool that the upstream closed or reset
before any byte of answer (its idle timeout fired as the request went out) is tried again once,
on a new connection, before anyone hears of it. Any failure, timeout or cancellation closes the
connection: only an answer read whole goes back to the pool.

Errors carry nothing of the request: the engine's `connection_error` names the exception's type
and the phase only.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import zlib
from collections.abc import Callable
from functools import lru_cache, partial
from urllib.parse import urlsplit

import certifi
import httptools

from reapi.core import answer_too_large, connection_error, detached
from reapi.providers import UpstreamRequest
from reapi.router import MAX_ANSWER_BYTES

from .upstream import encode_body
from .upstream_connect import open_socket

__all__ = ["H1Transport", "UpstreamDisconnected", "origin_key"]

#: Exchanges in flight at once, as the aiohttp connector's limit was.
_LIMIT = 512
#: An idle connection older than this is closed rather than reused.
_KEEPALIVE_SECONDS = 30.0
_CLOSED_BY_PEER = frozenset({errno.ECONNRESET, errno.EPIPE})
_DECODED = frozenset({"gzip", "x-gzip", "deflate"})
#: The phases an exchange's errors name (as the aiohttp transport's do).
_FIRST_BYTE = "waiting for the first byte"
_BODY = "reading the body"
#: What may not appear in a header's name (controls, spaces, the colon), in a header's value
#: (line breaks, NUL), or in the request target (controls, spaces): each would break the head.
_UNSAFE_NAME = re.compile(r"[\x00-\x20:\x7f]")
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")


class UpstreamDisconnected(ConnectionError):
    """The upstream closed the connection before its answer was whole."""


class UpstreamProtocolError(OSError):
    """The upstream's answer is not HTTP/1.1 as it must be (or uses an unknown encoding)."""


class _TooLarge(Exception):
    """The answer passed the bound (its rest, if any, unread)."""


class _Origin:
    """Where a URL's requests go, worked out once per URL."""

    __slots__ = ("host", "key", "port", "request_line", "tls")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an upstream URL is http:// or https:// with a host")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (self.tls, self.host, self.port)
        authority = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _UNSAFE_TARGET.search(target) or _UNSAFE_TARGET.search(parts.netloc):
            raise ValueError("an upstream URL holds spaces or control characters")
        #: "<target> HTTP/1.1\r\nHost: ...\r\n", after the method.
        self.request_line = f" {target} HTTP/1.1\r\nHost: {authority}\r\n"


@lru_cache(maxsize=1024)
def _origin(url: str) -> _Origin:
    return _Origin(url)


def origin_key(url: str) -> tuple[bool, str, int] | None:
    """What the transport keys `url`'s connections by (tls, host, port), as `address_check`
    sees it; None for a URL it would not request."""
    try:
        return _origin(url).key
    except ValueError:
        return None


#: Headers the transport writes itself, whatever the request gave.
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: Headers the transport adds when the request gave none.
_DEFAULTS = (
    ("accept-encoding", "Accept-Encoding: identity\r\n"),
    ("user-agent", "User-Agent: reapi-server\r\n"),
)


@lru_cache(maxsize=256)
def _checked_name(name: str) -> str | None:
    """A header name in lower case, None when it would break the head: the adapters' few
    names, checked once each."""
    return None if _UNSAFE_NAME.search(name) else name.lower()


def _head(method: str, origin: _Origin, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request's head, as bytes; ValueError for a header that would break its lines."""
    lines = [method, origin.request_line]
    given = set()
    for name, value in headers.items():
        lower = _checked_name(name)
        # (`in` is memchr: a third of the regular expression's cost on a short value)
        if lower is None or "\r" in value or "\n" in value or "\0" in value:
            raise ValueError("a header would break the request's head")  # never its text
        if lower in _OURS:
            continue
        given.add(lower)
        lines.append(f"{name}: {value}\r\n")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body is not None else 0}\r\n")
    lines.extend(line for name, line in _DEFAULTS if name not in given)
    lines.append("\r\n")
    return "".join(lines).encode()


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one exchange at a time (`begin`, then the answer future)."""

    def __init__(self, pool: H1Transport, key: tuple[bool, str, int]) -> None:
        self._pool = pool
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.served = False  # an earlier exchange completed on it: a reused connection
        self.idle_since = 0.0
        self._answer: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._reset_answer(0)
        self._head_only = False
        self._first_byte = 0.0
        self._deadline = 0.0
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def _reset_answer(self, limit: int) -> None:
        self._limit = limit
        #: The answer's headers, names in lower case, a repeated one's values joined by ", ":
        #: decoded as each arrives, so the answer's dict is made in one pass.
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self.got_bytes = False
        self.phase = _FIRST_BYTE
        self._status = 0
        self._informational = False
        self._keep = False  # the answer allows another on this connection (told at its end)

    # -- the exchange ---------------------------------------------------------------------------
    def begin(
        self, data: bytes, limit: int, first_byte: float, whole: float, head_only: bool
    ) -> asyncio.Future[tuple[int, dict[str, str], bytes]]:
        assert self.transport is not None
        self._reset_answer(limit)
        self._head_only = head_only
        answer = self._answer = self._loop.create_future()
        if self.closed:  # its close was read before the request went out: nothing can answer
            answer.set_exception(UpstreamDisconnected())
            return answer
        self.transport.write(data)
        now = self._loop.time()
        self._first_byte, self._deadline, self._last_read = first_byte, now + whole, now
        self._timer = self._loop.call_at(min(self._deadline, now + first_byte), self._check_time)
        return answer

    def end(self) -> None:
        """After the answer future is done (or the wait for it ended): back to the pool when
        the answer was read whole and the connection may be kept, else closed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        answer, self._answer = self._answer, None
        keep = (
            answer is not None
            and answer.done()
            and not answer.cancelled()
            and answer.exception() is None
            and not self._head_only
            and not self.closed
            and self._keep
        )
        if keep:
            self.served = True
            self._pool._release(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: BaseException) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()

    def _check_time(self) -> None:
        self._timer = None
        if self._answer is None or self._answer.done():
            return
        now = self._loop.time()
        silent_until = self._last_read + self._first_byte
        if now >= self._deadline or now >= silent_until:
            self._fail(TimeoutError())
            return
        self._timer = self._loop.call_at(min(self._deadline, silent_until), self._check_time)

    # -- asyncio ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._forget(self)
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._status and self.phase == _BODY and self._until_close():
            self._complete()  # the body ran up to the connection's close: that is its end
            return
        answer.set_exception(exc if exc is not None else UpstreamDisconnected())

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # bytes nobody asked for: the connection is not usable
            self.close()
            return
        self.got_bytes = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(type(exc).__name__))

    def _until_close(self) -> bool:
        headers = self._headers
        return "content-length" not in headers and "transfer-encoding" not in headers

    # -- httptools' callbacks -------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        # (httptools joins a header cut between reads before calling this)
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational (103 Early Hints): the answer is still coming
            self._informational = True
            self._headers = {}
            return
        self._status = status
        self.phase = _BODY
        length = self._headers.get("content-length")
        # (the parser refuses a Content-Length that is not digits, or two that differ)
        if length is not None and _declares_over(length, self._limit):
            self._fail(_TooLarge())
            return
        if self._head_only:
            self._complete()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limit:
            self._fail(_TooLarge())
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._keep = self._parser.should_keep_alive()  # (only known until this call returns)
        self._complete()

    def _complete(self) -> None:
        answer = self._answer
        if answer is None or answer.done():
            return
        headers = self._headers
        content = b"".join(self._body)
        self._body, self._headers = [], {}  # an idle connection keeps nothing of the answer
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            if encoding not in _DECODED:
                answer.set_exception(UpstreamProtocolError("an unknown content encoding"))
                return
            try:
                content = _decompressed(content, self._limit)
            except zlib.error:
                answer.set_exception(UpstreamProtocolError("a body that does not decompress"))
                return
            except _TooLarge as exc:
                answer.set_exception(exc)
                return
        answer.set_result((self._status, headers, content))


def _declares_over(length: str, limit: int) -> bool:
    """Whether a Content-Length (values of a repeated one joined by ", ") is past `limit`."""
    if length.isdigit():
        return int(length) > limit
    return any(value.isdigit() and int(value) > limit for value in length.split(", "))


def _decompressed(content: bytes, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by the header
    data = decoder.decompress(content, limit + 1)
    if len(data) > limit or decoder.unconsumed_tail:
        raise _TooLarge()
    return data


def _stale(exc: BaseException) -> bool:
    """The peer closed or reset the connection (not a timeout, not a refused connect)."""
    if isinstance(exc, UpstreamDisconnected):
        return True
    return isinstance(exc, OSError) and exc.errno in _CLOSED_BY_PEER


class H1Transport:
    """The engine's transport (see the module's notes)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: the context https upstreams are checked with (certifi's roots when None)."""
        #: Sees the origin (tls, host, port) and the addresses a new connection is about to be
        #: made to, and may refuse them with `OSError` (`result_urls.ResultUrls.connect_check`).
        self.address_check: Callable[[tuple[bool, str, int], list[str]], None] | None = None
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._tls = tls

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    def _release(self, connection: _Connection) -> None:
        connection.idle_since = connection._loop.time()
        self._idle.setdefault(connection.key, []).append(connection)

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)

    def _pooled(self, origin: _Origin) -> _Connection | None:
        """The origin's most recently idle connection that is still usable, if any (not a
        coroutine: a connection from the pool, the usual case, costs no task step)."""
        idle = self._idle.get(origin.key)
        while idle:
            connection = idle.pop()
            transport = connection.transport
            # The connection's loop: `get_running_loop()` is a getpid system call on 3.11.
            fresh = connection._loop.time() - connection.idle_since < _KEEPALIVE_SECONDS
            if fresh and not connection.closed and transport and not transport.is_closing():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin, first_byte: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=certifi.where())
            tls = self._tls
        async with asyncio.timeout(first_byte):
            check = self.address_check
            sock = await open_socket(
                origin.host, origin.port, None if check is None else partial(check, origin.key)
            )
            made = False
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin.key),
                    sock=sock,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
                made = True
            finally:
                if not made:  # (a transport made closes its socket itself)
                    sock.close()
        if not connection.closed:  # (closed already: `_forget` has run, nothing to keep)
            self._open.add(connection)
        return connection

    async def exchange(
        self,
        request: UpstreamRequest,
        provider: str,
        first_byte: float,
        body: float,
        limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, dict[str, str], bytes]:
        refused: Exception | None = None
        try:
            origin = _origin(request.url)
            data, headers = encode_body(request)
            message = _head(request.method, origin, headers, data)
        except ValueError as exc:
            refused = connection_error(exc, provider, _FIRST_BYTE)
        if refused is not None:
            raise detached(refused)
        if data:
            message += data
        if self._slots is None:
            self._slots = asyncio.Semaphore(_LIMIT)
        # One coroutine for the whole exchange: the pool's connection is taken without one,
        # and the slot without `async with` (whose `__aenter__` and `__aexit__` are two more).
        slots = self._slots
        await slots.acquire()
        try:
            retry_stale = True
            while True:
                connection: _Connection | None = None
                try:
                    connection = self._pooled(origin)
                    if connection is None:
                        connection = await self._connect(origin, first_byte)
                    answer = connection.begin(
                        message, limit, first_byte, first_byte + body, request.method == "HEAD"
                    )
                    try:
                        return await answer
                    finally:
                        connection.end()
                except _TooLarge:
                    break
                except (TimeoutError, OSError) as exc:
                    reused = connection is not None and connection.served
                    before_answer = connection is None or not connection.got_bytes
                    if retry_stale and reused and before_answer and _stale(exc):
                        retry_stale = False
                        continue
                    phase = connection.phase if connection is not None else _FIRST_BYTE
                    error = connection_error(exc, provider, phase)
                raise detached(error)
        finally:
            slots.release()
        raise answer_too_large(provider, limit)
