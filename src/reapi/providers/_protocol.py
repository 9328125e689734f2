"""The sans-I/O vocabulary shared by adapters and the engine.

An adapter never touches the network. Each operation is a generator that yields `UpstreamRequest`
(or `Sleep`) steps and receives `UpstreamResponse` objects back; its return value is the result.
A step that fails in the engine (no answer, a deadline, a refused fetch) raises its `ReapiError`
at that `yield`, so an adapter may remove what it left upstream first (`_cleanup`).
The engine drives the same generator from sync or async code, so protocol logic is written once.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .._answer_codecs import json_loads
from .._exceptions import APIResponseError
from .._frozen import quick_init

__all__ = [
    "Batch",
    "FetchReference",
    "GeneratedFile",
    "ImageResult",
    "Protocol",
    "Sleep",
    "Step",
    "TaskState",
    "TaskStatus",
    "UpstreamRequest",
    "UpstreamResponse",
]

T = TypeVar("T")

_SECRET_HEADERS = frozenset({"authorization", "x-goog-api-key", "x-api-key", "api-key"})


def _masked(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("[secret]" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


#: "probe": a health probe (`Adapter.probe`), which carries no request of a caller.
#: "cleanup": deleting what reapi left upstream for a request (an uploaded input), sent through
#: `_cleanup.removed`: best effort, it never fails the caller's request.
Purpose = Literal["create", "poll", "download", "cancel", "probe", "cleanup"]


@quick_init
@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One HTTP request to an upstream. Bodies and secret headers never show in its repr."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = field(default=None, repr=False)
    content: bytes | None = field(default=None, repr=False)
    #: multipart form fields (name, value) — repeated names allowed, as `image[]` needs.
    data: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: multipart files (name, (filename, bytes, content type)).
    files: tuple[tuple[str, tuple[str, bytes, str]], ...] = field(default=(), repr=False)
    purpose: Purpose = "create"
    #: True for large binary results: the engine allows the longer download deadline.
    download: bool = False
    #: A streamed answer (server-sent events) is asked for: the engine allows at most this
    #: many seconds of silence, from sending to the first byte and between reads after it,
    #: within the usual bound on the whole answer.
    idle_timeout: float | None = None

    def __repr__(self) -> str:
        url = self.url.split("?", 1)[0]  # a query may carry `key=`
        return f"UpstreamRequest({self.method} {url}, purpose={self.purpose!r})"

    def safe_headers(self) -> dict[str, str]:
        return _masked(self.headers)


@quick_init
@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)
    elapsed_ms: float = 0.0

    def json(self, provider: str) -> Any:
        """Parse the body; a body that is not JSON is the upstream's fault (failover-able)."""
        # The decoder's error holds the whole body, which may echo the prompt: not chained
        # (raised after the `except`, not through `translated`: two closures less a call).
        try:
            return json_loads(self.content)
        except ValueError:
            pass
        raise APIResponseError(
            "the provider answered with a body that is not valid JSON",
            provider=provider,
            status=self.status,
        )

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait before the next step (polling). The engine sleeps without blocking an event loop."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Batch:
    """Several requests sent at once (e.g. n images from an upstream that makes one per call).
    The generator receives a tuple of responses in the same order."""

    requests: tuple[UpstreamRequest, ...]


@dataclass(frozen=True, slots=True)
class FetchReference:
    """Download a URL the caller gave (e.g. a source video). The engine does it through its
    safe fetcher, never as an `UpstreamRequest`: every hop is held to the SSRF rules, the body
    to a size limit and `accept`ed media types. The generator receives a `File`."""

    url: str = field(repr=False)
    param: str
    accept: frozenset[str]


Step = UpstreamRequest | Sleep | Batch | FetchReference
Protocol = Generator[Step, Any, T]


@quick_init
@dataclass(frozen=True, slots=True)
class GeneratedFile:
    """One output: inline bytes, or a URL with the request that fetches it (auth if needed)."""

    content_type: str
    data: bytes | None = field(default=None, repr=False)
    url: str | None = field(default=None, repr=False)
    fetch: UpstreamRequest | None = None
    #: Unix seconds when the upstream URL stops working, when known.
    url_expires_at: int | None = None
    #: `data` as the provider's own base64 text, when it sent it so (checked when decoded): a
    #: `b64_json` answer passes it on instead of encoding the bytes again.
    b64: str | None = field(default=None, repr=False)


@quick_init
@dataclass(frozen=True, slots=True)
class ImageResult:
    images: tuple[GeneratedFile, ...]
    usage: Mapping[str, Any] | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None


TaskState = Literal["queued", "in_progress", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """An upstream task mapped onto OpenAI's video states."""

    state: TaskState
    progress: int = 0
    outputs: tuple[GeneratedFile, ...] = ()
    thumbnail: GeneratedFile | None = None
    #: For failed tasks: a stable code (never the upstream's message).
    error_code: str | None = None
    content_blocked: bool = False
    #: Seconds the upstream suggests waiting before the next poll.
    poll_after: float | None = None
    seconds: int | None = None
    size: str | None = None
