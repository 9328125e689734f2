"""A provider's answer is read up to a bound (`RouterConfig.max_answer_bytes`, and
`max_download_bytes` for binary results): past it the attempt fails as the provider's fault
(`APIResponseError`: failover), whatever the answer declared, however it came (a Content-Length,
chunks, gzip that grows once decompressed), on every engine: the SDK's httpx engines and the
gateway's h1 and aiohttp transports. Real sockets: an asyncio server writes the answers byte by
byte."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from reapi import APIResponseError
from reapi._engine import SyncEngine
from reapi.core import AsyncEngine, answer_too_large
from reapi.providers import UpstreamRequest
from reapi.router import MAX_ANSWER_BYTES, Router, RouterConfig
from reapi_server.upstream import aiohttp_engine
from reapi_server.upstream_h1 import H1Transport

LIMIT = 64 * 1024

#: Each answer's head and body as the server writes them.
ANSWERS: dict[str, tuple[bytes, bytes]] = {
    "declared": (b"content-length: %d\r\n" % (LIMIT + 1), b"x" * (LIMIT + 1)),
    "chunked": (b"transfer-encoding: chunked\r\n", b""),  # body written by `_chunked`
    "gzip": (b"content-encoding: gzip\r\n", gzip.compress(b" " * (LIMIT * 4))),
    "fits": (b"content-length: %d\r\n" % LIMIT, b"y" * LIMIT),
}


def _chunked(size: int, piece: int = 8192) -> bytes:
    out = b""
    while size > 0:
        n = min(piece, size)
        out += b"%x\r\n" % n + b"z" * n + b"\r\n"
        size -= n
    return out + b"0\r\n\r\n"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)
    kind = head.split(b" ")[1].rsplit(b"/", 1)[1].decode()
    extra, body = ANSWERS[kind]
    if kind == "gzip":
        extra += b"content-length: %d\r\n" % len(body)
    if kind == "chunked":
        body = _chunked(LIMIT * 2)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra + b"\r\n")
    try:
        writer.write(body)
        await writer.drain()
        await asyncio.sleep(0.2)  # the reader hangs up first when it gives up
    except ConnectionError:
        pass
    writer.close()


@pytest.fixture
def upstream() -> Iterator[str]:
    """The answering server, on a loop and thread of its own (the sync engine blocks its
    caller)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        asyncio.start_server(_answer, "127.0.0.1", 0), loop
    ).result(10)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def stop() -> None:
        server.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _config() -> RouterConfig:
    return RouterConfig(first_byte_timeout=5.0, max_answer_bytes=LIMIT, max_download_bytes=LIMIT)


def _request(base: str, kind: str, *, download: bool = False) -> UpstreamRequest:
    if download:
        return UpstreamRequest("GET", f"{base}/{kind}", download=True)
    return UpstreamRequest("POST", f"{base}/{kind}", json={"n": 1})


ENGINES: dict[str, Callable[[], AsyncEngine]] = {
    "httpx": lambda: AsyncEngine(Router(_config())),
    "aiohttp": lambda: aiohttp_engine(Router(_config())),
    "h1": lambda: AsyncEngine(Router(_config()), transport=H1Transport()),
}


@pytest.fixture(params=sorted(ENGINES))
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    made = ENGINES[request.param]()
    yield made
    await made.aclose()


@pytest.mark.parametrize("kind", ["declared", "chunked", "gzip"])
@pytest.mark.parametrize("download", [False, True])
async def test_an_answer_past_the_bound_is_the_providers_fault(engine, upstream, kind, download):
    with pytest.raises(APIResponseError) as raised:
        await engine.send(_request(upstream, kind, download=download), "primary", 5.0)
    assert raised.value.provider == "primary"
    assert f"larger than {LIMIT} bytes" in str(raised.value)


async def test_an_answer_within_the_bound_is_read_whole(engine, upstream):
    reply = await engine.send(_request(upstream, "fits"), "primary", 5.0)
    assert (reply.status, reply.content) == (200, b"y" * LIMIT)


@pytest.mark.parametrize("kind", ["declared", "chunked", "gzip"])
def test_the_sync_engine_keeps_the_same_bound(upstream, kind):
    engine = SyncEngine(Router(_config()))
    try:
        with pytest.raises(APIResponseError):
            engine.send(_request(upstream, kind), "primary", 5.0)
        assert engine.send(_request(upstream, "fits"), "primary", 5.0).content == b"y" * LIMIT
    finally:
        engine.close()


def test_the_default_bounds_leave_room_for_the_largest_answers():
    config = RouterConfig()
    assert config.max_answer_bytes == MAX_ANSWER_BYTES >= 200 * 1024 * 1024
    assert config.max_download_bytes >= 1024 * 1024 * 1024
    assert "larger than 10 bytes" in str(answer_too_large("p", 10))
