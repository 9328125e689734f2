"""Connecting only to addresses that were checked, for the aiohttp and httpx clients.

`result_urls` vets the host of a URL an upstream's answer names before the request; a client
that then looks the name up again to connect may hear another answer (DNS rebinding: public to
the check, loopback a moment later). `upstream_h1` resolves once and checks what it connects to;
these do the same for the other two clients:

- aiohttp: `VettingResolver`, the connector's resolver, checks each answer before aiohttp
  connects to it (and before it enters aiohttp's DNS cache);
- httpx: `PinnedBackend`, the network backend of the client's direct connections, resolves the
  name once, checks the addresses and connects to them, one after the other (the families
  alternated; a configured provider's host is connected to by name, as before). The TLS
  handshake and the Host header still name the host: only the socket's address is pinned.
  Connections through a proxy (`HTTPS_PROXY`) keep httpx's own backend: the
  proxy, which the operator chose, resolves the names there.

`check(host, port, addresses)` raises `OSError` to refuse; each client reports it as a failed
connection.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from reapi.core import connect_in_turn, system_resolve_async

__all__ = ["AddressCheck", "PinnedBackend", "VettingResolver", "pin_client"]

#: host, port, the addresses about to be connected to → None, or `OSError` to refuse them.
AddressCheck = Callable[[str, int, list[str]], None]


class VettingResolver(AbstractResolver):
    """aiohttp's resolver, with `check` on every answer before it is used or cached."""

    def __init__(self, check: AddressCheck, inner: AbstractResolver | None = None) -> None:
        self._check = check
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        self._check(host, port, [answer["host"] for answer in answers])
        return answers

    async def close(self) -> None:
        await self._inner.close()


def _alternated(addresses: list[str]) -> list[str]:
    """The families alternated, the resolver's first address first (RFC 8305 §4)."""
    by_family: dict[int, list[str]] = {}
    for address in dict.fromkeys(addresses):
        by_family.setdefault(ipaddress.ip_address(address.split("%")[0]).version, []).append(
            address
        )
    rounds = itertools.zip_longest(*by_family.values())
    return [address for turn in rounds for address in turn if address is not None]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses `check` passed."""

    def __init__(
        self,
        check: AddressCheck,
        inner: httpcore.AsyncNetworkBackend,
        lookup: Callable[[str, int], Any] = system_resolve_async,
        trusted: Callable[[str, int], bool] = lambda host, port: False,
    ) -> None:
        self._check = check
        self._trusted = trusted
        self._inner = inner
        self._lookup = lookup

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._trusted(host, port):  # a configured provider's: connected as httpx would
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = await self._addresses(host, port)
            self._check(host, port, addresses)
        except OSError as exc:
            refused = str(exc) or type(exc).__name__
        else:
            refused = ""
        if refused:
            raise httpcore.ConnectError(refused)  # out of the except block: nothing chained
        return await connect_in_turn(
            self._inner, _alternated(addresses), port, timeout, local_address, socket_options
        )

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]  # an address already: no lookup
        except ValueError:
            pass
        addresses: list[str] = await self._lookup(host, port)
        if not addresses:
            raise OSError("the name resolved to no address")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pin_client(
    client: httpx.AsyncClient,
    check: AddressCheck,
    trusted: Callable[[str, int], bool] = lambda host, port: False,
) -> bool:
    """Puts `PinnedBackend` under `client`'s direct connections (not under its proxies');
    False when its transport is not httpx's own (a test's mock, an application's transport),
    which is left as it is. `trusted(host, port)`: an origin connected to as before, by name
    (a configured provider's: its streams keep anyio's happy eyeballs). httpx has no public way
    to give its pool a network backend: the attributes reached here are httpx's and
    httpcore's own (a test checks they still exist)."""
    transport = client._transport
    if not isinstance(transport, httpx.AsyncHTTPTransport):
        return False
    pool = transport._pool
    if type(pool) is not httpcore.AsyncConnectionPool:  # a proxy's pool (AsyncHTTPProxy, …)
        return False
    pool._network_backend = PinnedBackend(check, pool._network_backend, trusted=trusted)
    return True
