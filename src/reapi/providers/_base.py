"""What every adapter shares: its connection, the call objects it receives, error mapping.

Adapters are pure: they build upstream requests and read upstream responses. They never read the
environment, keep global state or do I/O. Error mapping turns (status, provider code) into one of
reapi's exceptions; the upstream's message is dropped because it may echo the prompt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from .._exceptions import (
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentPolicyError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ReapiError,
)
from .._frozen import quick_init
from .._params import ImageParams, Shape, VideoParams
from .._payload import Payload
from .._secret import Secret
from ..catalog import Route
from ._protocol import (
    GeneratedFile,
    ImageResult,
    Protocol,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._source_video import SourceVideo

__all__ = [
    "Adapter",
    "Connection",
    "ImageCall",
    "VideoCall",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class Connection:
    """One configured upstream: its name in the catalog, base URL and key."""

    name: str
    base_url: str
    api_key: Secret
    url_lifetime_seconds: int | None = None
    #: The catalog's `poll_interval` for this provider, when set: it replaces the adapters'
    #: hints (see `LocalCore.poll_video`).
    poll_interval: float | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@quick_init
@dataclass(frozen=True, slots=True)
class ImageCall:
    route: Route
    params: ImageParams
    shape: Shape
    payload: Payload
    idempotency_key: str
    edit: bool = False


@dataclass(frozen=True, slots=True)
class VideoCall:
    route: Route
    params: VideoParams
    shape: Shape
    payload: Payload
    idempotency_key: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The vetted source of an enhancement model (`capabilities.input_video`): the bytes the
    #: adapter sends, never the caller's URL (`_source_video`).
    source: SourceVideo | None = None


#: Retry-After as delta-seconds (a fraction tolerated).
_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    # Seconds in ASCII digits only: float() also reads "inf", "nan" and other scripts' digits.
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


class Adapter:
    """Base class of every provider adapter. Subclasses override the operations they serve."""

    #: The name catalog providers use in `adapter = "..."`.
    name: ClassVar[str]
    #: Provider error codes that mean "blocked by a content policy": never failed over.
    content_policy_codes: ClassVar[frozenset[str]] = frozenset()
    #: Provider error codes that mean "this account is out of quota or credit": fail over.
    quota_codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @property
    def provider(self) -> str:
        return self.connection.name

    # -- operations (each a sans-I/O generator) --------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        raise ConfigurationError(f"{self.name} does not generate images", provider=self.provider)

    def submit_video(self, call: VideoCall) -> Protocol[str]:
        """Create an upstream task; return its upstream id."""
        raise ConfigurationError(f"{self.name} does not generate videos", provider=self.provider)

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        raise ConfigurationError(f"{self.name} does not generate videos", provider=self.provider)

    def cancel_video(self, route: Route, task_id: str) -> Protocol[None]:
        """Best effort; providers without a cancel or delete call do nothing."""
        return
        yield

    def probe(self, route: Route) -> UpstreamRequest | None:
        """A cheap authenticated call that shows whether the provider answers for this route
        (listing or reading a model, the account, one page of tasks): a health probe. Built from
        the route and the key alone, so it can never carry a caller's data. None: the provider
        documents no such call, and its route is not probed."""
        return None

    # -- reading answers -----------------------------------------------------------------------
    def _json_object(self, response: UpstreamResponse) -> dict[str, Any]:
        """The body as a JSON object; {} when it is not one (an error may come from a proxy)."""
        try:
            body = response.json(self.provider)
        except APIResponseError:
            return {}
        return body if isinstance(body, dict) else {}

    def _keyless_file(self, content_type: str, url: str) -> GeneratedFile:
        """A result at a public or signed URL: fetched without the key, and taken to expire
        after the connection's `url_lifetime_seconds` when that is set."""
        lifetime = self.connection.url_lifetime_seconds
        return GeneratedFile(
            content_type,
            url=url,
            fetch=UpstreamRequest("GET", url, purpose="download", download=True),
            url_expires_at=int(time.time()) + lifetime if lifetime else None,
        )

    # -- error mapping -----------------------------------------------------------------------
    def error_code(self, response: UpstreamResponse) -> str | None:
        """The provider's machine-readable error code, if its error body has one."""
        return None

    def request_id(self, response: UpstreamResponse) -> str | None:
        return response.header("x-request-id")

    def check(self, response: UpstreamResponse) -> UpstreamResponse:
        """Return the response if it is a success, else raise the mapped exception."""
        if response.status < 400:
            return response
        raise self.error_for(response)

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        status = response.status
        code = self.error_code(response)
        common: dict[str, Any] = {
            "provider": self.provider,
            "status": status,
            "request_id": self.request_id(response),
            "provider_code": _safe_code(code),
        }
        where = f"{self.provider} answered HTTP {status}"
        if code in self.content_policy_codes:
            return ContentPolicyError(f"{where}: blocked by its content policy", **common)
        if code in self.quota_codes:
            return QuotaExceededError(f"{where}: its account is out of quota", **common)
        if status == 429:
            return RateLimitError(
                f"{where}: rate limited",
                retry_after=parse_retry_after(response.header("retry-after")),
                **common,
            )
        kinds: dict[int, type[APIStatusError]] = {
            400: BadRequestError,
            401: AuthenticationError,
            403: PermissionDeniedError,
            404: NotFoundError,
            422: BadRequestError,
        }
        kind = kinds.get(status, InternalServerError if status >= 500 else BadRequestError)
        return kind(where, **common)


def _safe_code(code: str | None) -> str | None:
    """Keep provider codes that look like identifiers; anything else could be free text."""
    if code and len(code) <= 64 and code.replace("_", "").replace(".", "").isalnum():
        return code
    return None
