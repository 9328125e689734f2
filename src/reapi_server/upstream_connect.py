"""Connecting to a provider's host as RFC 8305 ("happy eyeballs") asks, for `upstream_h1`.

A host name often has IPv6 and IPv4 addresses, and on some networks one family is routed
nowhere: its connects neither succeed nor fail, they wait. Tried one after the other (what
uvloop's `create_connection` does), such an address costs every new connection its whole
connect deadline. So the addresses are tried with the families alternating, each attempt
`STAGGER` seconds after the one before it (at once after one fails), and the first connected
socket is kept; the others are cancelled and closed. aiohttp does the same.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["STAGGER", "connect_first", "open_socket"]

#: Seconds an attempt has before the next address is tried beside it (RFC 8305's default).
STAGGER = 0.25

AddressInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr), as getaddrinfo gives


async def open_socket(
    host: str, port: int, check: Callable[[list[str]], None] | None = None
) -> socket.socket:
    """A connected, non-blocking TCP socket to one of `host`'s addresses. `check` sees the
    addresses first and may refuse them (raising `OSError`): they are the ones connected to,
    with no second lookup in between."""
    try:
        literal = ipaddress.ip_address(host)  # an address already: no lookup on a thread
    except ValueError:
        literal = None
    if literal is None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    elif literal.version == 6:
        infos = [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]
    else:
        infos = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    if check is not None:
        check([str(info[4][0]) for info in infos])
    return await connect_first(_interleaved(infos))


def _interleaved(infos: list[AddressInfo]) -> list[AddressInfo]:
    """The families alternated, the resolver's first address first (RFC 8305 §4)."""
    by_family: dict[int, list[AddressInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    rounds = itertools.zip_longest(*by_family.values())
    return [info for turn in rounds for info in turn if info is not None]


async def connect_first(infos: list[AddressInfo], stagger: float = STAGGER) -> socket.socket:
    """The first of `infos` to connect; OSError (the first attempt's) when none does."""
    waiting = list(infos)
    running: set[asyncio.Task[socket.socket]] = set()
    errors: list[BaseException] = []
    try:
        while waiting or running:
            if waiting:
                running.add(asyncio.create_task(_attempt(waiting.pop(0))))
            done, running = await asyncio.wait(
                running,
                timeout=stagger if waiting else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            winner: socket.socket | None = None
            for task in done:
                error = task.exception()
                if error is not None:
                    errors.append(error)
                elif winner is None:
                    winner = task.result()
                else:
                    task.result().close()  # connected in the same turn: one is enough
            if winner is not None:
                return winner
    finally:
        for task in running:  # still connecting: stopped, and closed should it have connected
            task.cancel()
            task.add_done_callback(_close_if_connected)
    failure = errors[0] if errors else OSError("no address to connect to")
    raise failure


async def _attempt(info: AddressInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    connected = False
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests go out whole
        connected = True
    finally:
        if not connected:
            sock.close()
    return sock


def _close_if_connected(task: asyncio.Task[socket.socket]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()
