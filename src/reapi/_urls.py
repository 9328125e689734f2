"""The rules for a URL a caller hands reapi (a reference image, a source video). No I/O here.

A caller's URL is a server-side request forgery risk: fetched naively it could read the cloud
metadata service (169.254.169.254), an admin port on 127.0.0.1 or a database on 10.0.0.5. So a
URL is fetched (by `_fetch`) only when every hop passes these rules:

- the scheme is http or https, the URL carries no credentials and names a host;
- every address the host resolves to is public: not loopback, private (10/8, 172.16/12,
  192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared/CGNAT (100.64/10),
  unspecified (0.0.0.0, ::), multicast or reserved, also when wrapped in an IPv6 form
  (`::ffff:127.0.0.1`, 6to4, NAT64). A numeric host in a legacy spelling (`2130706433`,
  `0x7f.1`, `127.1`) is read the way the system resolver would read it, then held to the same
  rule. Networks in `UrlPolicy.allow_networks` are let through (operators, simulators);
- redirects are followed by hand, each hop checked anew, at most `max_redirects`;
- the body is cut off at the size limit of its kind, and its first bytes must be the magic of
  an accepted media type (PNG, JPEG, WebP; MP4, QuickTime, WebM).

Errors are `InvalidRequestError`s naming the parameter. Their messages never hold the URL: its
query may be a signature, and its path the caller's data.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

from ._detached import translated
from ._exceptions import InvalidRequestError
from ._media import IMAGE_TYPES, VIDEO_TYPES, extension_for, sniff_media_type
from ._numbers import ascii_whole_number
from ._payload import File

__all__ = [
    "BodyReader",
    "ByteBudget",
    "Hop",
    "UrlPolicy",
    "Walk",
    "decode_data_url",
    "first_hop",
    "is_public",
    "vet_addresses",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: A host made only of numbers (decimal, octal `0177`, hex `0x7f`) in one to four parts: the
#: system resolver reads it as an IPv4 address (inet_aton), never as a name.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.I)
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # CGNAT; `is_global` knows, `is_private` not
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SNIFF_BYTES = 16


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What reapi accepts when it fetches a URL a caller gave it. Secure by default.

    `allow_networks` lists CIDRs (`"10.20.0.0/16"`, `"127.0.0.1/32"`) that a URL may point into
    although they are not public: an operator's own asset host, or simulators on loopback.
    """

    allow_networks: tuple[str, ...] = ()
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    max_redirects: int = 5
    #: Seconds for the whole fetch, redirects included.
    timeout: float = 60.0
    connect_timeout: float = 10.0
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = translated(
            lambda: tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks),
            ValueError,
            lambda exc: ValueError(f"allow_networks: {exc}"),
        )
        object.__setattr__(self, "_networks", networks)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return self._networks

    def limit_for(self, content_type: str) -> int:
        return self.max_video_bytes if content_type.startswith("video/") else self.max_image_bytes


def _refusal(param: str, message: str, code: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param} {message}", param=param, code=code)


def not_allowed(param: str) -> InvalidRequestError:
    # Unresolvable and private say the same: the answer must not map a private network.
    return _refusal(param, "URL does not resolve to a public address", "url_not_allowed")


def fetch_failed(param: str, why: str) -> InvalidRequestError:
    return _refusal(param, f"could not be downloaded from its URL ({why})", "url_fetch_failed")


def timed_out(param: str) -> InvalidRequestError:
    return _refusal(param, "could not be downloaded from its URL in time", "url_timeout")


# -- addresses ---------------------------------------------------------------------------------
def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address leads to, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> bool:
    """Whether reapi may connect to `address` for a caller: public, or in an allowed network."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the IPv4 address itself, in IPv6 clothing
            return is_public(address.ipv4_mapped, allowed)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded, allowed):
            return False
    if any(address.version == net.version and address in net for net in allowed):
        return True
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
    )


def _address(text: str) -> IPAddress | None:
    """An IP literal (without an IPv6 zone id), or None."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _literal(host: str, param: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal in any spelling, or None for a name."""
    address = _address(host)
    if address is not None or not _NUMERIC_HOST.fullmatch(host):
        return address
    return translated(
        lambda: ipaddress.IPv4Address(socket.inet_aton(host.rstrip("."))),
        OSError,
        lambda _: _refusal(param, "URL has a malformed numeric host", "invalid_url"),
    )


def vet_addresses(addresses: Sequence[str], policy: UrlPolicy, param: str) -> tuple[str, ...]:
    """The addresses to connect to (in order), once every one the host resolved to passed.

    One private address among public ones refuses the host: a name that answers both is a
    rebinding setup, not a CDN."""
    parsed = [_address(text) for text in addresses]
    if not parsed or not all(a is not None and is_public(a, policy.networks) for a in parsed):
        raise not_allowed(param)
    return tuple(dict.fromkeys(str(a) for a in parsed))


# -- hops ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hop:
    """One request of a fetch. `host` is the exact string the connection layer will be asked
    to connect to; `address` is set when the host is already an address (no DNS needed)."""

    url: httpx.URL = field(repr=False)
    host: str
    port: int
    address: str | None

    def request_headers(self, accept: Iterable[str]) -> list[tuple[bytes, bytes]]:
        return [
            (b"Host", self.url.netloc),
            (b"Accept", ", ".join(sorted(accept)).encode()),
            (b"Accept-Encoding", b"identity"),
            (b"User-Agent", b"reapi-fetch"),
        ]


def _hop(url: httpx.URL, policy: UrlPolicy, param: str) -> Hop:
    if url.scheme not in ("http", "https"):
        raise _refusal(param, "URL must use http or https", "invalid_url")
    if url.userinfo:
        raise _refusal(param, "URL must not carry credentials", "invalid_url")
    host = translated(
        lambda: url.raw_host.decode("ascii"),
        UnicodeDecodeError,
        lambda _: _refusal(param, "URL has a malformed host", "invalid_url"),
    )
    if not host:
        raise _refusal(param, "URL has no host", "invalid_url")
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = _literal(host, param)
    if literal is None:
        return Hop(url, host, port, None)
    if not is_public(literal, policy.networks):
        raise not_allowed(param)
    return Hop(url, host, port, str(literal))


def first_hop(url: str, policy: UrlPolicy, param: str) -> Hop:
    """The first request to `url`, once its form passes the rules (DNS is the caller's)."""
    parsed = _parsed(url)
    if parsed is None:
        raise _refusal(param, "is not a valid URL", "invalid_url")
    return _hop(parsed, policy, param)


class Walk:
    """The hops of one fetch: the first is vetted at once, each redirect before it is followed.

    The I/O twins resolve and pin `hop`, send it, and hand the answer's head to `answer`, which
    either moves to the next hop (None) or returns the reader for the body."""

    def __init__(
        self,
        url: str,
        accept: frozenset[str],
        param: str,
        policy: UrlPolicy,
        budget: ByteBudget | None = None,
    ) -> None:
        self.url = url
        self.accept = accept
        self.param = param
        self.policy = policy
        self.budget = budget
        self.redirects = 0
        self.hop = first_hop(url, policy, param)

    def answer(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> BodyReader | None:
        param = self.param
        if status in _REDIRECTS:
            if self.redirects >= self.policy.max_redirects:
                raise fetch_failed(param, "too many redirects")
            location = _header(headers, b"location")
            if not location:
                raise fetch_failed(param, f"HTTP {status} without a Location")
            target = _parsed(location, base=self.hop.url)
            if target is None:
                raise _refusal(param, "URL redirects to an invalid URL", "invalid_url")
            self.hop = _hop(target, self.policy, param)
            self.redirects += 1
            return None
        if not 200 <= status < 300:
            raise fetch_failed(param, f"HTTP {status}")
        length = _header(headers, b"content-length")
        return BodyReader(self.policy, self.accept, param, length, self.budget)


def _parsed(url: str, base: httpx.URL | None = None) -> httpx.URL | None:
    """The URL, or None when it is not one. The refusal is raised outside the handler, so the
    parser's own message (which quotes the URL) is not kept as the refusal's `__context__`."""
    try:
        return base.join(url) if base is not None else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, UnicodeDecodeError):
        return None


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


# -- bodies --------------------------------------------------------------------------------------
class ByteBudget:
    """What the inputs one request fetches may add up to, across its concurrent fetches: each
    body takes its bytes as they arrive, and the one that crosses the bound is cut off there."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def take(self, count: int, param: str) -> None:
        self.taken += count
        if self.taken > self.limit:
            raise _refusal(
                param,
                f"would bring the inputs of this request over {self.limit // (1024 * 1024)} MiB",
                "inputs_too_large",
            )

    def check(self, count: int, param: str) -> None:
        """Refuse at once a body whose announced size would cross the bound."""
        if self.taken + count > self.limit:
            self.take(count, param)


def _kind_error(param: str, accept: frozenset[str]) -> InvalidRequestError:
    if accept == {"image/png"}:
        return _refusal(param, "must be a PNG image", "invalid_image")
    if accept <= IMAGE_TYPES:
        return _refusal(param, "must be a PNG, JPEG or WebP image", "invalid_image")
    if accept <= VIDEO_TYPES:
        return _refusal(param, "must be an MP4, QuickTime or WebM video", "invalid_video")
    return _refusal(param, "must be a PNG, JPEG or WebP image or an MP4 video", "invalid_file")


def _too_large(param: str, limit: int) -> InvalidRequestError:
    return _refusal(param, f"is larger than {limit // (1024 * 1024)} MiB", "file_too_large")


def _file(content: bytes, content_type: str, param: str, source_url: str | None) -> File:
    name = f"{param}.{extension_for(content_type)}"
    return File(content, name, content_type, source_url=source_url)


class BodyReader:
    """Collects a body chunk by chunk: refuses a wrong kind at its first bytes and a body over
    its kind's limit as soon as it crosses it, so neither is read to the end."""

    def __init__(
        self,
        policy: UrlPolicy,
        accept: frozenset[str],
        param: str,
        declared: str | None,
        budget: ByteBudget | None = None,
    ) -> None:
        self._policy = policy
        self._accept = accept
        self._param = param
        self._budget = budget
        self._chunks = bytearray()
        self._type: str | None = None
        self._limit = max(policy.limit_for(t) for t in accept)
        length = ascii_whole_number(declared) if declared is not None else None
        if length is not None and length > self._limit:
            raise _too_large(param, self._limit)
        if length is not None and budget is not None:
            budget.check(length, param)

    def feed(self, chunk: bytes) -> None:
        if self._budget is not None:
            self._budget.take(len(chunk), self._param)
        self._chunks += chunk
        if self._type is None and len(self._chunks) >= _SNIFF_BYTES:
            self._sniff()
        if len(self._chunks) > self._limit:
            raise _too_large(self._param, self._limit)

    def _sniff(self) -> None:
        self._type = sniff_media_type(bytes(self._chunks[:_SNIFF_BYTES]))
        if self._type not in self._accept:
            raise _kind_error(self._param, self._accept)
        self._limit = self._policy.limit_for(self._type)

    def file(self, source_url: str | None) -> File:
        if self._type is None:
            self._sniff()
        assert self._type is not None
        return _file(bytes(self._chunks), self._type, self._param, source_url)


def decode_data_url(url: str, accept: frozenset[str], param: str, policy: UrlPolicy) -> File:
    """A `data:<type>;base64,...` URL as a file, held to the same kinds and limits as a fetch."""
    header, comma, data = url.partition(",")
    if not comma or not header.lower().startswith("data:") or not header.endswith(";base64"):
        raise _refusal(param, "data URL must be base64 (data:<type>;base64,...)", "invalid_url")
    limit = max(policy.limit_for(t) for t in accept)
    if len(data) * 3 // 4 > limit:
        raise _too_large(param, limit)
    content = translated(
        lambda: base64.b64decode(data, validate=True),
        (binascii.Error, ValueError),
        lambda _: _refusal(param, "data URL is not valid base64", "invalid_url"),
    )
    reader = BodyReader(policy, accept, param, None)
    reader.feed(content)
    return reader.file(None)
