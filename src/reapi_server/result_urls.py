"""Where an upstream's answer sends the gateway: checked before it connects.

An answer names URLs the gateway then requests: a result to download (fal's, Replicate's,
xAI's or BytePlus's CDN links), a status to poll. What an answer says is the provider's to
write, and a provider that is compromised, or a model whose output is a URL its author chose,
must not make the gateway read its own network (a cloud's metadata service, the metrics
listener, a database's HTTP port) and hand what it read to a caller as an image or a video.

A URL on the origin of a configured connection (its `base_url`, which the operator chose: the
demo's simulators are on loopback) goes as it is. Any other must name a public address, or a
host that resolves only to public ones, as a caller's URL must; `fetch_allow_networks` lets a
private network through for both. A refusal is the provider's failure (`APIResponseError`: the
request fails over, or fails as for any unusable answer), never a caller's.

Every client then checks the addresses it resolved to connect, the very ones it connects to: a
host that answers a public address to the first check and a private one a moment later (DNS
rebinding) is refused there. `upstream_h1` (the default) calls `connect_check`; the aiohttp
transport's resolver and the httpx client's network backend (`pinned_connect`; the httpx client
carries the `httpx` transport, the streams and the mirror's copy of a video) call `host_check`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

from reapi import APIResponseError, InvalidRequestError
from reapi.core import AsyncTransport, UrlPolicy, first_hop, translated_async, vet_addresses
from reapi.providers import Connection, UpstreamRequest
from reapi.router import MAX_ANSWER_BYTES

from .upstream_h1 import origin_key

__all__ = ["CheckedTransport", "ResultUrls"]

#: host, port → addresses (the default asks the system resolver).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _origin(base_url: str) -> str | None:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme and parts.netloc else None


class ResultUrls:
    def __init__(
        self,
        connections: Iterable[Connection],
        policy: UrlPolicy,
        resolver: Resolver = _system_resolver,
    ) -> None:
        connections = list(connections)
        origins = {_origin(c.base_url) for c in connections}
        #: "scheme://host[:port]/" of every configured connection: a prefix test, one C call.
        self.trusted = tuple(sorted(o for o in origins if o is not None))
        #: As `upstream_h1` keys its connections: (tls, host, port).
        self._trusted_keys = frozenset(k for c in connections if (k := origin_key(c.base_url)))
        #: As a resolver or a network backend sees them: (host, port).
        self._trusted_hosts = frozenset((host, port) for _, host, port in self._trusted_keys)
        self._policy = policy
        self._resolve = resolver

    async def check(self, url: str, provider: str) -> None:
        """Returns when the gateway may request `url` for `provider`'s answer; raises the
        provider's `APIResponseError` otherwise (nothing of the URL in it)."""
        if url.startswith(self.trusted):
            return
        await translated_async(
            lambda: self._vet(url),
            (InvalidRequestError, UnicodeError),
            lambda _: APIResponseError(
                f"{provider} answered with a URL that does not lead to a public address",
                provider=provider,
            ),
        )

    async def _vet(self, url: str) -> None:
        hop = first_hop(url, self._policy, "url")  # scheme, credentials, a literal address
        if hop.address is not None:
            return
        try:
            addresses = await self._resolve(hop.host, hop.port)
        except OSError:
            # A name this machine cannot resolve, it cannot connect to either; through a proxy
            # (`upstream_client = "httpx"` with `HTTPS_PROXY`, where only the proxy resolves
            # names) the request is the proxy's to make or refuse.
            return
        vet_addresses(addresses, self._policy, "url")

    def connect_check(self, key: tuple[bool, str, int], addresses: list[str]) -> None:
        """For a transport about to connect to `addresses`, the ones it resolved the origin
        `key` (tls, host, port) to: `PermissionError` (an `OSError`, a failed connect) when the
        origin is no configured connection's and an address is not public."""
        if key not in self._trusted_keys:
            self._refuse_unless_public(addresses)

    def trusts(self, host: str, port: int) -> bool:
        """Whether (host, port) is a configured connection's origin."""
        return (host, port) in self._trusted_hosts

    def host_check(self, host: str, port: int, addresses: list[str]) -> None:
        """`connect_check` for a client that knows the host and port it connects to, not the
        scheme (aiohttp's resolver, httpcore's network backend)."""
        if (host, port) not in self._trusted_hosts:
            self._refuse_unless_public(addresses)

    def _refuse_unless_public(self, addresses: list[str]) -> None:
        try:
            vet_addresses(addresses, self._policy, "url")
            return
        except InvalidRequestError:
            pass
        raise PermissionError("a URL an answer named leads to no public address")


class CheckedTransport:
    """The engine's transport, with `ResultUrls.check` before every request to a host that
    is not a configured connection's (a request to one costs a prefix test)."""

    def __init__(self, inner: AsyncTransport, urls: ResultUrls) -> None:
        self.inner = inner
        self.urls = urls
        self._trusted = urls.trusted

    async def exchange(
        self,
        request: UpstreamRequest,
        provider: str,
        first_byte: float,
        body: float,
        limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, dict[str, str], bytes]:
        if not request.url.startswith(self._trusted):
            await self.urls.check(request.url, provider)
        return await self.inner.exchange(request, provider, first_byte, body, limit)

    async def aclose(self) -> None:
        await self.inner.aclose()
