"""`lean_http`: the gateway's cycle writes what uvicorn's writes, raises what it raises, and
leaves the same state, for the heads and bodies an application can send; requests without
forwarding headers skip the proxy headers layer, requests with them pass it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from reapi_server.lean_http import GatewayCycle, LeanHttpToolsProtocol

_STATE = (
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
    "keep_alive",
    "waiting_for_100_continue",
    "disconnected",
)
_DEFAULTS = [(b"server", b"uvicorn"), (b"date", b"Mon, 07 Dec 2026 13:00:00 GMT")]
_JSON = [(b"content-length", b"2"), (b"content-type", b"application/json")]


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name)


class _Flow:
    write_paused = False


class _Protocol:
    def __init__(self, transport: _Transport) -> None:
        import logging

        self.transport = transport
        self.flow = _Flow()
        self.logger = logging.getLogger("uvicorn.error")
        self.access_logger = logging.getLogger("uvicorn.access")
        self.access_log = False


def _cycle(lean: bool, method: str, keep_alive: bool) -> tuple[Any, _Transport, list[int]]:
    """A cycle (the gateway's or uvicorn's) of a request, its transport and its answers ended."""
    transport, protocol = _Transport(), None
    scope = {"type": "http", "method": method}
    done: list[int] = []
    protocol = _Protocol(transport)
    if lean:
        cycle: Any = GatewayCycle(
            scope, protocol, list(_DEFAULTS), False, keep_alive, lambda: done.append(1)
        )
    else:
        cycle = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]
            transport=transport,
            flow=protocol.flow,  # type: ignore[arg-type]
            logger=protocol.logger,
            access_logger=protocol.access_logger,
            access_log=False,
            default_headers=list(_DEFAULTS),
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=lambda: done.append(1),
        )
    return cycle, transport, done


def _outcome(lean: bool, method: str, keep_alive: bool, messages: list[Any]) -> Any:
    """What a cycle wrote, raised and ended up as, after `messages`."""
    cycle, transport, done = _cycle(lean, method, keep_alive)
    raised = None
    for message in messages:
        try:
            asyncio.run(cycle.send(message))
        except Exception as exc:
            raised = (type(exc), str(exc))
            break
    state = [getattr(cycle, name) for name in _STATE]
    return b"".join(transport.written), transport.closed, raised, done, state


def _start(headers: Any, status: Any = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


CASES = {
    "json": [_start(_JSON), _body(b"{}")],
    "json with a request id": [
        _start([*_JSON, (b"x-request-id", b"req_0123")]),
        _body(b"{}"),
    ],
    "two bodies": [_start([(b"content-length", b"4")]), _body(b"ab", True), _body(b"cd")],
    "no length: chunked": [_start([(b"content-type", b"text/plain")]), _body(b"ab")],
    "204 without length": [_start([], 204), _body(b"")],
    "connection close": [_start([*_JSON, (b"connection", b"close")]), _body(b"{}")],
    "transfer-encoding": [_start([(b"transfer-encoding", b"chunked")]), _body(b"x")],
    "upper-case name": [_start([(b"Content-Length", b"2")]), _body(b"{}")],
    "unknown name": [_start([*_JSON, (b"x-other", b"1")]), _body(b"{}")],
    "bad name": [_start([(b"x bad", b"1")])],
    "bad value": [_start([(b"content-type", b"a\r\nx: y")])],
    "tab in a value": [_start([(b"content-type", b"a\tb"), (b"content-length", b"0")])],
    "bad value in content-length": [_start([(b"content-length", b"2\n")])],
    "signed content-length": [_start([(b"content-length", b"+2")]), _body(b"{}")],
    "not a number": [_start([(b"content-length", b"two")])],
    "two lengths": [_start([(b"content-length", b"2"), (b"content-length", b"5")]), _body(b"{}")],
    "longer than its length": [_start(_JSON), _body(b"{}x")],
    "shorter than its length": [_start(_JSON), _body(b"{")],
    "unknown status": [_start(_JSON, 99)],
    "no status": [{"type": "http.response.start", "headers": _JSON}],
    "str headers": [_start([("content-length", "2")])],
    "body first": [_body(b"{}")],
    "start twice": [_start(_JSON), _start(_JSON)],
    "after the end": [_start(_JSON), _body(b"{}"), _body(b"")],
    "no headers": [{"type": "http.response.start", "status": 200}, _body(b"")],
}


@pytest.mark.parametrize("method", ["POST", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_the_cycle_sends_what_uvicorns_sends(case: str, method: str, keep_alive: bool) -> None:
    expected = _outcome(False, method, keep_alive, CASES[case])
    assert _outcome(True, method, keep_alive, CASES[case]) == expected


def test_a_json_answer_takes_the_fast_head() -> None:
    cycle, _, _ = _cycle(True, "POST", True)
    assert cycle._head(_start([*_JSON, (b"x-request-id", b"req_1")])) == (
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ndate: Mon, 07 Dec 2026 13:00:00 GMT\r\n"
        b"content-length: 2\r\ncontent-type: application/json\r\nx-request-id: req_1\r\n\r\n"
    )
    assert cycle._head(_start([(b"x-other", b"1")])) is None


def test_an_image_answer_s_charge_takes_the_fast_head() -> None:
    """`x-reapi-credits-charged` is on every image answer: the hot path's, not uvicorn's."""
    cycle, _, _ = _cycle(True, "POST", True)
    head = cycle._head(_start([*_JSON, (b"x-reapi-credits-charged", b"40")]))
    assert head is not None and head.endswith(b"x-reapi-credits-charged: 40\r\n\r\n")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


def _protocol() -> LeanHttpToolsProtocol:
    config = Config(_app, proxy_headers=True, forwarded_allow_ips="*", log_config=None)
    protocol = LeanHttpToolsProtocol(config, ServerState(), {}, asyncio.new_event_loop())
    assert isinstance(protocol.app, ProxyHeadersMiddleware)
    return protocol


@pytest.mark.parametrize(
    ("headers", "through_proxy_layer"),
    [
        ([(b"Host", b"x")], False),
        ([(b"Host", b"x"), (b"X-Forwarded-For", b"10.0.0.1")], True),
        ([(b"x-forwarded-proto", b"https")], True),
        ([(b"X-Forwarded-Host", b"evil")], False),  # not read by the proxy layer
    ],
)
def test_a_request_skips_the_proxy_layer_only_without_forwarding_headers(
    headers: list[tuple[bytes, bytes]], through_proxy_layer: bool
) -> None:
    protocol = _protocol()
    started: list[Any] = []
    protocol._start_asgi_task = lambda cycle, app: started.append(app)  # type: ignore[method-assign]
    transport = _Transport()
    protocol.connection_made(transport)
    head = b"GET /x HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    protocol.data_received(head + b"\r\n")
    assert started == [protocol.app if through_proxy_layer else protocol.app.app]  # type: ignore[attr-defined]
    assert isinstance(protocol.cycle, GatewayCycle)
    protocol.loop.close()


def test_headers_from_an_iterator_are_written_as_uvicorn_writes_them() -> None:
    for headers in ([*_JSON, (b"x-other", b"1")], _JSON):
        outcomes = [
            _outcome(lean, "POST", True, [_start(iter(headers)), _body(b"{}")])
            for lean in (False, True)
        ]
        assert outcomes[0] == outcomes[1]


def test_each_answer_has_the_default_headers_of_its_request() -> None:
    heads = []
    for date in (b"Mon, 07 Dec 2026 13:00:00 GMT", b"Mon, 07 Dec 2026 13:00:01 GMT"):
        cycle, _, _ = _cycle(True, "POST", True)
        cycle.default_headers = [(b"date", date)]
        heads.append(cycle._head(_start(_JSON)))
    assert heads[0] is not None and b"13:00:00" in heads[0]
    assert heads[1] is not None and b"13:00:01" in heads[1]
    cycle, _, _ = _cycle(True, "POST", True)
    cycle.default_headers = [(b"x-bad", b"\x00")]  # not the fast path's: uvicorn's send raises
    assert cycle._head(_start(_JSON)) is None


def test_expect_100_continue_is_noted() -> None:
    protocol = _protocol()
    protocol._start_asgi_task = lambda cycle, app: None  # type: ignore[method-assign]
    protocol.connection_made(_Transport())
    head = b"POST /x HTTP/1.1\r\nExpect: 100-Continue \r\nContent-Length: 1\r\n\r\n"
    protocol.data_received(head)
    assert protocol.cycle.waiting_for_100_continue
    assert protocol.headers == [(b"expect", b"100-Continue"), (b"content-length", b"1")]
    protocol.loop.close()
