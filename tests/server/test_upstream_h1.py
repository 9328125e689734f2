"""The plain HTTP/1.1 transport (`upstream_h1`) against raw asyncio servers on real sockets:
every way an answer may be framed is read whole, a connection goes back to the pool only when
its answer allows it, a cancelled exchange never leaves its connection to the next one, a
header that would break the request's lines is refused before anything is sent, and https is
checked against the transport's roots. (Failover, stale connections, deadlines and the answer
bound run on it in test_upstream_transports.py and test_answer_limit.py.)"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reapi import APIConnectionError
from reapi.providers import UpstreamRequest
from reapi_server.upstream_h1 import H1Transport, _origin

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Upstream:
    """A raw HTTP/1.1 server: `answer(head_and_body, writer)` writes each answer and says
    whether the connection stays open. Counts connections and keeps every request seen."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.answer(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def url(self, path: str = "/v1/x", scheme: str = "http") -> str:
        assert self.server is not None
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}{path}"


@pytest.fixture
async def upstream_for() -> AsyncIterator[Callable[..., Awaitable[Upstream]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Handler, tls: ssl.SSLContext | None = None) -> Upstream:
        upstream = Upstream(answer)
        upstream.server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0, ssl=tls)
        servers.append(upstream.server)
        return upstream

    yield start
    for server in servers:
        server.close()


def _post(url: str, **headers: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Authorization": "Bearer sk-h1", **headers}, json={"n": 1})


ANSWERS = {
    # name: (answer bytes, the connection may be kept)
    "length": (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\nX-A: 2\r\n\r\nhello", True),
    "chunked": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        True,
    ),
    "early hints": (
        b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        True,
    ),
    "gzip": (
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n"
        % len(gzip.compress(b"hello"))
        + gzip.compress(b"hello"),
        True,
    ),
    "connection close": (
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
        False,
    ),
    "until close": (b"HTTP/1.1 200 OK\r\n\r\nhello", False),
    "http/1.0": (b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello", False),
    "http/1.0 keep-alive": (
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 5\r\n\r\nhello",
        True,
    ),
    "http/1.0 until close": (b"HTTP/1.0 200 OK\r\n\r\nhello", False),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
async def test_every_framing_is_read_whole_and_kept_only_when_allowed(upstream_for, name):
    raw, kept = ANSWERS[name]

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return kept

    upstream = await upstream_for(answer)
    transport = H1Transport()
    try:
        for _ in range(3):
            status, headers, content = await transport.exchange(_post(upstream.url()), "p", 2, 2)
            assert (status, content) == (200, b"hello")
            assert all(name == name.lower() for name in headers)
    finally:
        await transport.aclose()
    if name == "length":
        assert headers["x-a"] == "1, 2"  # repeated headers joined, as httpx joins them
    assert upstream.connections == (1 if kept else 3)


async def test_the_request_is_written_as_httpx_would_send_its_body(upstream_for):
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        return True

    upstream = await upstream_for(answer)
    transport = H1Transport()
    request = UpstreamRequest(
        "POST",
        upstream.url("/v1/images/generations?x=1"),
        {"Idempotency-Key": "k"},
        json={"p": "é"},
    )
    try:
        status, _, content = await transport.exchange(request, "p", 2, 2)
    finally:
        await transport.aclose()
    assert (status, content) == (204, b"")
    head, _, body = upstream.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/images/generations?x=1 HTTP/1.1"
    assert f"Host: {upstream.url('').split('/')[2]}" in lines
    assert "Idempotency-Key: k" in lines and "Content-Type: application/json" in lines
    assert "Accept-Encoding: identity" in lines
    assert body == httpx.Request("POST", "http://x", json={"p": "é"}).content
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"p": "é"}


async def test_a_cancelled_exchange_never_hands_its_connection_on(upstream_for):
    """The hedge that lost, a caller gone: its answer may still come on that connection, so
    the next exchange must not read it there."""
    answers = 0

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal answers
        answers += 1
        if answers == 1:
            await asyncio.sleep(0.3)  # answered late, to nobody
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%d" % (1, answers))
        await writer.drain()
        return True

    upstream = await upstream_for(answer)
    transport = H1Transport()
    try:
        first = asyncio.create_task(transport.exchange(_post(upstream.url()), "p", 2, 2))
        await asyncio.sleep(0.1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        _, _, content = await transport.exchange(_post(upstream.url()), "p", 2, 2)
    finally:
        await transport.aclose()
    assert content == b"2" and upstream.connections == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nX-Injected: 1"},
        {"X-Evil": "a\nX-Injected: 1"},
        {"X-Evil": "a\rX-Injected: 1"},
        {"X-Evil": "a\x00"},
        {"X-Evil\r\nX": "a"},
        {"Bad Name": "a"},
        {"X:Evil": "a"},
    ],
    ids=["value", "value-lf", "value-cr", "value-nul", "name", "space", "colon"],
)
async def test_a_header_that_would_break_the_request_is_refused_unsent(upstream_for, headers):
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        raise AssertionError("nothing may be sent")

    upstream = await upstream_for(answer)
    transport = H1Transport()
    try:
        with pytest.raises(APIConnectionError) as raised:
            await transport.exchange(_post(upstream.url(), **headers), "p", 2, 2)
    finally:
        await transport.aclose()
    assert upstream.connections == 0
    assert "Injected" not in str(raised.value) and "Evil" not in str(raised.value)
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def _certificate() -> tuple[bytes, bytes]:
    """A self-signed certificate for 127.0.0.1 (PEM), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reapi test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


async def test_https_is_spoken_and_checked_against_the_roots(upstream_for, tmp_path):
    cert, key = _certificate()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return True

    upstream = await upstream_for(answer, served)
    url = upstream.url(scheme="https")
    trusting = H1Transport(tls=ssl.create_default_context(cadata=cert.decode()))
    default = H1Transport()  # certifi's roots: this certificate is nobody's
    try:
        for _ in range(2):
            assert (await trusting.exchange(_post(url), "p", 2, 2))[2] == b"ok"
        with pytest.raises(APIConnectionError) as refused:
            await default.exchange(_post(url), "p", 2, 2)
    finally:
        await trusting.aclose()
        await default.aclose()
    assert "SSL" in str(refused.value)
    # Both on one connection; the refused handshake never reached the server's handler.
    assert len(upstream.requests) == 2 and upstream.connections == 1


async def test_large_bodies_flow_both_ways_past_the_socket_buffers():
    """A request body the upstream reads slowly and an answer larger than the sockets hold go
    through whole, and the connection serves the next exchange: nothing waits on a paused
    transport or a write never flushed."""
    size = 6 * 1024 * 1024
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                got = 0
                while got < length:  # slowly: the client's writes must wait for room
                    got += len(await reader.read(min(256 * 1024, length - got)))
                    await asyncio.sleep(0.005)
                body = b"a" * size
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    transport = H1Transport()
    request = UpstreamRequest("POST", url, content=b"b" * size)
    try:
        for _ in range(2):
            status, _, content = await asyncio.wait_for(transport.exchange(request, "p", 5, 5), 10)
            assert status == 200 and len(content) == size
    finally:
        await transport.aclose()
        server.close()
    assert connections == 1


async def test_a_connection_closed_before_its_request_fails_at_once():
    """An upstream that accepts and closes at once (its connection limit, a proxy refusing):
    when the close is read before the request is written, the exchange fails at once instead of
    waiting out its read deadline on a connection that can no longer answer."""

    server = await asyncio.start_server(_close_at_once, "127.0.0.1", 0)
    transport = H1Transport()
    port = server.sockets[0].getsockname()[1]
    request = _post(f"http://127.0.0.1:{port}/v1/x")
    try:
        origin = _origin(request.url)
        connection = await transport._connect(origin, 5)
        for _ in range(50):  # until its close has been read
            if connection.closed:
                break
            await asyncio.sleep(0.01)
        assert connection.closed
        answer_future = connection.begin(b"POST / HTTP/1.1\r\n\r\n", 10, 5, 10, False)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(answer_future, 1)
        connection.end()
    finally:
        await transport.aclose()
        server.close()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
