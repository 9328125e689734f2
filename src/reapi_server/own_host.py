"""The gateway's own address in every request. The Host header (like X-Forwarded-Host) is the
client's to choose, and every URL built from the request (output URLs, replays, the trailing
slash redirect) would point wherever the client said. Before anything reads it, it is replaced
by `public_base_url`'s host, else by the address the connection came in on (the socket's, never
a header's). The scheme is uvicorn's: `https` only from a trusted proxy (`forwarded_allow_ips`)."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from starlette.types import Scope

__all__ = ["OwnHost"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=64)  # the listening addresses: a few, asked on every request
def _authority(host: str, port: int | None, scheme: str) -> bytes:
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return host.encode("idna")
    return f"{host}:{port}".encode("idna")


class OwnHost:
    """Applied by the access layer (`observability.middleware`), before anything reads the
    request: one layer for the three things every request passes."""

    def __init__(self, *, public_base_url: str | None, listen: tuple[str, int]) -> None:
        self._public: tuple[str, bytes] | None = None
        if public_base_url:
            parts = urlsplit(public_base_url)
            self._public = parts.scheme, parts.netloc.encode("idna")
        self._listen = listen  # when the connection has no address (a Unix socket)

    def pin(self, scope: Scope) -> None:
        """Set an http scope's Host header and scheme to the gateway's own, in place."""
        if self._public is not None:
            scheme, authority = self._public
        else:
            scheme = scope["scheme"]
            host, port = scope.get("server") or self._listen
            authority = _authority(host, port, scheme)
        headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
        headers.append((b"host", authority))
        scope["headers"] = headers
        scope["scheme"] = scheme
