"""Bounded request heads. The httptools parser buffers a header whole before it hands it over,
with no cap: a 64 MiB header was read, held (about 160 MB) and parsed. Bytes are counted here as
they arrive, before the parser sees them, and a request whose request line or header line, or
whose head in all, is over the limit is answered 431 and its connection closed.

A head must also arrive in time: uvicorn closes a connection idle after a response, but not
a new one that sends nothing, nor one that sends its head a byte at a time, so anyone could
hold connections (and file descriptors) for ever. A connection's first head, and each later
one from its first byte, gets `HeadLimits.seconds`; past them it is answered 408 (closed
without an answer if nothing came) and closed.

A body that does not come whole with its head must keep coming, as Apache's mod_reqtimeout
asks (`body=…,MinRate=…`): it gets `HeadLimits.body_seconds` from the end of its head, plus a
second for every `HeadLimits.body_bytes_per_second` bytes that arrived. Past that it is
answered 408 and closed (a trickled body held a connection for as long as its sender liked).
Time the gateway itself takes to read (uvicorn stops reading while the application has not
taken what came) is not counted against it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from .lean_http import LeanHttpToolsProtocol

__all__ = ["GatewayConfig", "HeadLimitedProtocol", "HeadLimits", "HeadMeter"]

log = logging.getLogger("reapi_server.access")

_BODY = (
    b'{"error":{"message":"the request head is larger than this gateway accepts",'
    b'"type":"invalid_request_error","param":null,"code":"request_header_fields_too_large"}}'
)
_LATE_BODY = (
    b'{"error":{"message":"the request head did not arrive in time",'
    b'"type":"invalid_request_error","param":null,"code":"request_timeout"}}'
)
_SLOW_BODY = (
    b'{"error":{"message":"the request body did not arrive in time",'
    b'"type":"invalid_request_error","param":null,"code":"request_timeout"}}'
)


def _head(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n"
    )


_HEAD = _head(b"431 Request Header Fields Too Large", _BODY)
_LATE_HEAD = _head(b"408 Request Timeout", _LATE_BODY)
_SLOW_HEAD = _head(b"408 Request Timeout", _SLOW_BODY)


@dataclass(frozen=True, slots=True)
class HeadLimits:
    line_bytes: int = 16 * 1024
    total_bytes: int = 64 * 1024
    #: How long a request head may take to arrive.
    seconds: float = 30.0
    #: How long a body may take from the end of its head, plus a second for each
    #: `body_bytes_per_second` bytes of it that arrived.
    body_seconds: float = 30.0
    body_bytes_per_second: int = 500


class HeadMeter:
    """Counts the bytes of one request head as they arrive: the current line's and all of
    them, up to the empty line that ends the head (empty lines before the request line, which
    parsers skip, do not end it)."""

    __slots__ = (
        "_cr_only",
        "_line",
        "_lines",
        "_total",
        "_whole_below",
        "head_end",
        "limits",
        "reading",
    )

    @property
    def started(self) -> bool:
        """Some bytes of this head have arrived."""
        return self._total > 0 or self._line > 0

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        #: A head shorter than this is within both limits, whatever its lines.
        self._whole_below = min(limits.line_bytes, limits.total_bytes)
        self.restart()

    def restart(self) -> None:
        """The next bytes begin a new request head."""
        self.reading = True
        #: Once `reading` is False: where the head ended in the bytes last accepted.
        self.head_end = 0
        self._line = 0  # bytes of the current line so far (its \r included)
        self._cr_only = False  # the current line so far is a lone \r
        self._lines = 0  # non-empty lines of this head so far
        self._total = 0

    def accept(self, data: bytes) -> bool:
        """False once the head is over a limit. Bytes after the head are not counted."""
        if not self._total and not self._line:
            whole = _whole_head(data, self._whole_below)
            if whole:  # within both limits: nothing to count line by line
                self.reading, self.head_end, self._total = False, whole, whole
                return True
        position, end = 0, len(data)
        while position < end:
            newline = data.find(b"\n", position)
            stop = end if newline == -1 else newline
            if stop > position:
                self._cr_only = self._line == 0 and stop - position == 1 and data[position] == 13
                self._line += stop - position
            if self._line > self.limits.line_bytes:
                return False
            if newline == -1:
                self._total += end - position
                break
            self._total += newline + 1 - position
            if self._total > self.limits.total_bytes:
                return False
            position = newline + 1
            if self._line == 0 or self._cr_only:
                if self._lines:  # the empty line that ends this head: the rest is its body
                    self.reading = False
                    self.head_end = position
                    return True
            else:
                self._lines += 1
            self._line, self._cr_only = 0, False
        return self._total <= self.limits.total_bytes


def _whole_head(data: bytes, limit: int) -> int:
    """Where a head that begins `data` ends, when it ends within its first `limit` bytes (then
    no line of it, nor the whole, is over a limit); else 0, and the head is counted line by
    line. The usual request's head comes whole in one read: two searches in C instead of a
    pass of Python per line (about 700 bytecodes a request). A head ends at its first empty
    line, "\n" or a lone "\r"; one that starts with either is left to the line count (an
    empty line before the request line does not end it)."""
    if data[:1] in (b"\r", b"\n"):
        return 0
    bare, crlf = data.find(b"\n\n", 0, limit), data.find(b"\n\r\n", 0, limit)
    if crlf != -1 and (bare == -1 or crlf < bare):
        return crlf + 3
    return bare + 2 if bare != -1 else 0


class GatewayConfig(uvicorn.Config):
    """uvicorn's configuration with the head limits, for `HeadLimitedProtocol` (a Config is what
    uvicorn hands each protocol instance, and what it pickles to `--workers N` processes)."""

    def __init__(self, app: Any, *, head_limits: HeadLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.head_limits = head_limits


class HeadLimitedProtocol(LeanHttpToolsProtocol):
    """uvicorn's httptools protocol (`lean_http`) with a `HeadMeter` in front of the parser.

    The parser also holds a chunked body's trailer fields (header lines after the last chunk)
    whole: in a body, bytes that arrive without body bytes being handed over are counted
    against the same total limit.

    A request pipelined behind another starts being counted after the earlier one's last byte
    was parsed, so its head can pass the limit by at most the rest of that one socket read."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.head_limits if isinstance(config, GatewayConfig) else HeadLimits()
        self._meter = HeadMeter(limits)
        self._body_bytes = 0  # body bytes the parser handed over, on this connection
        self._held = 0  # bytes read in a body since the parser last handed over body bytes
        self._restarted = False  # a request ended in the read being parsed
        self._refused = False
        self._late: asyncio.TimerHandle | None = None  # the deadline of the head being read
        self._body_late: asyncio.TimerHandle | None = None  # the body's, once it is due
        self._body_since = 0.0  # the loop's time when the body's count began
        self._body_base = 0  # `_body_bytes` then

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._late = self.loop.call_later(self._meter.limits.seconds, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self._stop_body_deadline()
        super().connection_lost(exc)

    def _stop_deadline(self) -> None:
        if self._late is not None:
            self._late.cancel()
            self._late = None

    def _stop_body_deadline(self) -> None:
        if self._body_late is not None:
            self._body_late.cancel()
            self._body_late = None

    def _body_begins(self, base: int) -> None:
        """The head ended and its body did not come with it: the body's time starts."""
        self._body_since, self._body_base = self.loop.time(), base
        self._body_late = self.loop.call_later(self._meter.limits.body_seconds, self._body_due)

    def _body_due(self) -> None:
        self._body_late = None
        if self._refused or self.transport.is_closing():
            return
        limits, now = self._meter.limits, self.loop.time()
        waiting = self.cycle is not None and self.cycle.waiting_for_100_continue
        if self.flow.read_paused or waiting:
            # The gateway is behind (the application has not taken what came, a request
            # pipelined before this one still runs, or the sender waits for `100 Continue`,
            # which goes when the application first reads): the sender's time starts again.
            self._body_since, self._body_base = now, self._body_bytes
            self._body_late = self.loop.call_later(limits.body_seconds, self._body_due)
            return
        arrived = self._body_bytes - self._body_base
        due = self._body_since + limits.body_seconds + arrived / limits.body_bytes_per_second
        if now < due:
            self._body_late = self.loop.call_later(due - now, self._body_due)
        else:
            self._refuse(_SLOW_HEAD, _SLOW_BODY, 408, "request_timeout")

    def _head_late(self) -> None:
        self._late = None
        if self._refused or self.transport.is_closing() or not self._meter.reading:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A request runs; this head is pipelined behind it and waits its turn.
            self._late = self.loop.call_later(self._meter.limits.seconds, self._head_late)
            return
        if self._meter.started:
            self._refuse(_LATE_HEAD, _LATE_BODY, 408, "request_timeout")
        else:  # nothing came: closed as uvicorn closes an idle keep-alive connection
            self._refused = True
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        head_bytes, head_ended = 0, False
        if self._meter.reading:
            if self._late is None:  # the first bytes of a later head: its time starts
                self._late = self.loop.call_later(self._meter.limits.seconds, self._head_late)
            if not self._meter.accept(data):
                self._refuse()
                return
            if not self._meter.reading:
                self._stop_deadline()
                head_ended = True
            head_bytes = len(data) if self._meter.reading else self._meter.head_end
        handed_over, self._restarted = self._body_bytes, False
        super().data_received(data)
        if self._restarted:  # that request ended in this read; the next head began
            return
        if head_ended and not self._refused:  # and its body is still to come
            self._body_begins(handed_over)
        if head_bytes == len(data):
            return
        handed_over = self._body_bytes - handed_over
        rest = len(data) - head_bytes
        self._held = rest - handed_over if handed_over else self._held + rest
        if self._held > self._meter.limits.total_bytes:
            self._refuse()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_body_deadline()
        super().on_message_complete()
        self._meter.restart()
        self._held, self._restarted = 0, True

    def _refuse(
        self,
        status_head: bytes = _HEAD,
        body: bytes = _BODY,
        status: int = 431,
        code: str = "request_header_fields_too_large",
    ) -> None:
        self._refused = True  # nothing more is read from this connection
        self._stop_deadline()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            head = [status_head]
            for name, value in self.server_state.default_headers:
                head.append(name + b": " + value + b"\r\n")
            self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()
        log.info("request refused", extra={"status": status, "code": code})
