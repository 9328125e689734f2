"""uvicorn's httptools protocol with less Python per request, the same bytes on the wire.

Two things uvicorn (0.55) does on every request that the gateway can do for less:

- **The answer's head.** `RequestResponseCycle.send` runs two regular expressions on every
  header (~0.6 us a header: five headers an answer, ~3 us) and about 35 bytecodes of checks.
  Here a head whose names are all in `_PLAIN` (names that pass uvicorn's check, with no meaning
  to the framing) or `content-length` with digits, is written after one search of its values
  joined by tabs (a tab is allowed in a value, so the joined text holds a forbidden byte exactly
  when one of the values does). Anything else (another name, a `connection` or
  `transfer-encoding` header, a forbidden byte, a status uvicorn has no line for, write
  back-pressure, uvicorn's own access log on) goes to uvicorn's `send` untouched, which answers
  or raises exactly as it always did. A body of known length is written as uvicorn writes it.
- **The proxy headers layer.** With `proxy_headers` on, uvicorn wraps the app in
  `ProxyHeadersMiddleware`, which a request passes at every resumption of its coroutine; it
  changes the scope only when a request has an `X-Forwarded-For` or `X-Forwarded-Proto`
  header. A request without either (noticed as its headers arrive) is handed to the app inside
  it; one with them goes through it as before.

In the drain delay after SIGTERM (`leaving`), every answer not begun is sent with `connection:
close` (uvicorn then closes the connection after it), so that no request comes on it after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .leaving import LEAVING

__all__ = ["GatewayCycle", "LeanHttpToolsProtocol"]

#: Header names an answer may carry on the fast path: lower-case, valid by uvicorn's check
#: (asserted below) and meaningless to the framing (`connection`, `transfer-encoding` and
#: `content-length` are not here). The gateway's usual answers use only these.
_PLAIN = frozenset(
    {
        b"date",
        b"server",
        b"content-type",
        b"x-request-id",
        b"retry-after",
        b"cache-control",
        b"idempotent-replayed",
        b"x-reapi-credits-charged",  # json_api.responses.CREDITS_CHARGED
        b"location",
        b"vary",
        b"www-authenticate",
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
        b"content-security-policy",
        b"strict-transport-security",
    }
)
for _name in _PLAIN:
    if HEADER_RE.search(_name) or _name != _name.lower():  # pragma: no cover (a typo above)
        raise ValueError(_name)

#: Headers that make `ProxyHeadersMiddleware` change a request's scope.
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})
#: Header names `on_header` looks at twice.
_NOTED = _FORWARDED | {b"expect"}


class GatewayCycle(RequestResponseCycle):
    """uvicorn's cycle, made from its protocol, with a cheaper `send` for the usual answer."""

    def __init__(
        self,
        scope: Any,
        protocol: HttpToolsProtocol,
        default_headers: list[tuple[bytes, bytes]],
        expect_100_continue: bool,
        keep_alive: bool,
        on_response: Callable[..., None],
    ) -> None:
        self.scope = scope
        self.transport = protocol.transport
        self.flow = protocol.flow
        self.logger = protocol.logger
        self.access_logger = protocol.access_logger
        self.access_log = protocol.access_log
        self.default_headers = default_headers
        self.message_event = asyncio.Event()
        self.on_response = on_response
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        # Set here though the same in every request: as class attributes they were read
        # through a miss in the instance's dict (1,600 instructions an answer more).
        self.disconnected = False
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0

    async def send(self, message: ASGISendEvent) -> None:
        if LEAVING.now and not self.response_started:
            self.keep_alive = False  # the drain delay: the answer closes its connection
        if self.disconnected or self.access_log or self.flow.write_paused:
            await super().send(message)
        elif not self.response_started:
            head = self._head(message) if message["type"] == "http.response.start" else None
            if head is None:
                await super().send(message)
                return
            self.response_started = True
            self.waiting_for_100_continue = False
            self.transport.write(head)
        elif (
            self.response_complete
            or message["type"] != "http.response.body"
            or self.chunked_encoding
            or self.scope["method"] == "HEAD"
        ):
            await super().send(message)
        else:
            body = message.get("body", b"")
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            self.transport.write(body)
            if not message.get("more_body", False):
                if self.expected_content_length != 0:
                    raise RuntimeError("Response content shorter than Content-Length")
                self.response_complete = True
                self.message_event.set()
                if not self.keep_alive:
                    self.transport.close()
                self.on_response()

    def _head(self, message: Any) -> bytes | None:
        """The head uvicorn would write for this start message, or None (uvicorn's `send` is
        to take it). Nothing is changed before the head is known to be the fast path's."""
        defaults = self.default_headers
        block = _rendered[1] if defaults is _rendered[0] else _render(defaults)
        sent = message.get("headers", [])
        if block is None or type(sent) is not list:  # an iterator would be used up here
            return None
        length = None
        try:
            status_line = STATUS_LINE.get(message.get("status"))
            if status_line is None:
                return None
            content = [status_line, block]
            for name, value in sent:
                if name not in _PLAIN:
                    if name != b"content-length":
                        return None
                    if length is None:
                        length = value
                content.extend((name, b": ", value, b"\r\n"))
            # content is [status line, block, name, ": ", value, "\r\n", ...]: every value.
            if HEADER_VALUE_RE.search(b"\t".join(content[4::4])):
                return None
        except (TypeError, ValueError):  # not pairs of bytes: uvicorn says what it makes of it
            return None
        if length is not None:
            if not length.isdigit():
                return None
            self.expected_content_length = int(length)
            self.chunked_encoding = False
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        if (
            length is None
            and self.scope["method"] != "HEAD"
            and message["status"] not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)


#: uvicorn's default headers (`date`, `server`) as the last list of them was rendered:
#: [that list, its lines or None]. uvicorn makes a new list each second (the date).
_rendered: list[Any] = [None, None]


def _render(defaults: list[tuple[bytes, bytes]]) -> bytes | None:
    """The lines of `defaults` if the fast path may write them (plain names, no forbidden
    byte in a value), else None; kept for the next answer."""
    block = None
    try:
        if all(name in _PLAIN for name, _ in defaults) and not HEADER_VALUE_RE.search(
            b"\t".join(value for _, value in defaults)
        ):
            block = b"".join(name + b": " + value + b"\r\n" for name, value in defaults)
    except (TypeError, ValueError):
        pass
    _rendered[:] = defaults, block
    return block


class LeanHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose requests get a `GatewayCycle`, and whose requests without
    forwarding headers skip the proxy headers layer (see the module's doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app: Any = self.app
        #: The app a request without forwarding headers is handed: inside the proxy layer.
        self._unforwarded_app: ASGI3Application = (
            app.app if type(app) is ProxyHeadersMiddleware else app
        )
        self._forwarded = False

    def on_message_begin(self) -> None:
        # uvicorn's, and this request's forwarding headers not seen yet.
        self.url = b""
        self.expect_100_continue = False
        self._forwarded = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        # llhttp keeps trailing OWS, which RFC 9110 (5.5) excludes from the value.
        value = value.rstrip(b" \t")
        if name in _NOTED:
            if name in _FORWARDED:
                self._forwarded = True
            elif value.lower() == b"100-continue":
                self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""

        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app: ASGI3Application = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app if self._forwarded else self._unforwarded_app

        existing_cycle = self.cycle
        self.cycle = GatewayCycle(
            scope,
            self,
            self.server_state.default_headers,
            self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(),
            self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: queued behind the request before it
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))
