"""How `upstream_h1` connects to a host's addresses (`upstream_connect`, RFC 8305) on real
sockets: an address that drops connection attempts (a listening socket whose queue is full
drops SYNs, as a family routed nowhere does) costs a stagger, not the connect deadline."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from reapi_server.upstream_connect import STAGGER, _interleaved, connect_first, open_socket


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """An IPv6 loopback address and port whose connection attempts hang: the listening
    socket's queue is full and never accepted from."""
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("::1", port))  # fills the queue
    yield ("::1", port)
    queued.close()
    listener.close()


def _info(family: socket.AddressFamily, address: tuple[object, ...]) -> tuple[object, ...]:
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)


async def test_an_address_that_drops_attempts_costs_a_stagger_not_the_deadline(blackhole):
    accepted = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    infos = [
        _info(socket.AF_INET6, (*blackhole, 0, 0)),
        _info(socket.AF_INET, ("127.0.0.1", port)),
    ]
    try:
        started = time.perf_counter()
        sock = await asyncio.wait_for(connect_first(infos), 5)
        elapsed = time.perf_counter() - started
        assert sock.getpeername() == ("127.0.0.1", port)
        sock.close()
        await asyncio.wait_for(accepted.wait(), 2)
    finally:
        server.close()
    assert STAGGER * 0.8 < elapsed < STAGGER + 0.5


async def test_when_no_address_connects_the_first_error_is_raised_at_once():
    closed = [socket.socket(), socket.socket()]
    for sock in closed:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: refused
    infos = [_info(socket.AF_INET, s.getsockname()) for s in closed]
    try:
        started = time.perf_counter()
        with pytest.raises(ConnectionRefusedError):
            await connect_first(infos)
        assert time.perf_counter() - started < STAGGER  # a failure starts the next at once
    finally:
        for sock in closed:
            sock.close()


def test_the_families_alternate_the_resolvers_first_address_first():
    six = [_info(socket.AF_INET6, (f"::{n}", 1, 0, 0)) for n in (1, 2, 3)]
    four = [_info(socket.AF_INET, (f"10.0.0.{n}", 1)) for n in (1, 2)]
    assert _interleaved([*six, *four]) == [six[0], four[0], six[1], four[1], six[2]]
    assert _interleaved([four[0], *six]) == [four[0], six[0], six[1], six[2]]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_an_address_or_a_name_is_connected_to(host):
    server = await asyncio.start_server(lambda r, w: w.close(), host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sock = await open_socket(host, port)
        assert sock.getpeername()[1] == port
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        sock.close()
    finally:
        server.close()
