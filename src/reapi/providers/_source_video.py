"""The video an enhancement model works on: vetted once from bytes reapi holds, for every route.

An enhancement model (`capabilities.input_video`) is priced per request for a source of up to
`max_source_seconds`. Whatever route serves it, the source is taken here, before any upstream
call: an uploaded file, a decoded `data:video/...;base64,` URL, or the caller's http(s) URL
fetched through the engine's safe fetcher (`FetchReference`: SSRF rules on every hop, size
limit, magic bytes, no key). Its MP4 boxes are read (`_mp4`) and a source that is no MP4/MOV
reapi can read, or longer than the limit, is refused.

Adapters get the result as `VideoCall.source` and send *these* bytes: as an upload (Topaz), to
the host's file endpoint (Replicate), or as a data URL (fal). Never the caller's URL: fetched
again by a host, it could answer with other bytes (longer, larger, another type) than it
answered reapi, and the flat price would pay for them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .._detached import translated
from .._exceptions import InvalidRequestError
from .._payload import File, Payload
from ..catalog import ModelSpec, Route
from ._mp4 import Mp4Error, VideoInfo, read_video_info
from ._protocol import FetchReference, Protocol

__all__ = ["SOURCE_TYPES", "SourceVideo", "invalid_video", "source_limit", "source_video"]

_MEDIA_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}
#: What a source may be (the MP4 box reader reads both).
SOURCE_TYPES = frozenset(_MEDIA_TYPES.values())
_PARAM = "input_reference"


@dataclass(frozen=True, slots=True)
class SourceVideo:
    """Vetted source bytes and what their boxes say. Its repr never shows the bytes."""

    content: bytes = field(repr=False)
    info: VideoInfo
    #: Where a host already holds these same bytes (its own file store, uploaded by its
    #: adapter this attempt); None until then.
    host_url: str | None = field(default=None, repr=False)

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self.info.container]

    @property
    def filename(self) -> str:
        return f"{_PARAM}.{self.info.container}"


def source_limit(spec: ModelSpec, route: Route) -> float | None:
    """The longest source the request's price covers: the model's `max_source_seconds`, or a
    route's narrower one (its `limits`, or the older route option of that name)."""
    found = [
        value
        for value in (
            spec.capabilities.max_source_seconds,
            route.limits.max_source_seconds if route.limits else None,
            route.options.get("max_source_seconds"),
        )
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    return min(found) if found else None


def source_video(payload: Payload, limit: float | None) -> Protocol[SourceVideo]:
    """The source's bytes (fetched if the caller gave a URL), read and held to `limit`."""
    content = yield from _bytes_of(payload.get(_PARAM))
    info = translated(lambda: read_video_info(content), Mp4Error, lambda _: invalid_video())
    if limit is not None and info.duration > limit:
        raise InvalidRequestError(
            f"{_PARAM} is longer than this model takes ({limit:g} s)",
            param=_PARAM,
            code="video_too_long",
        )
    return SourceVideo(content, info)


def _bytes_of(reference: object) -> Protocol[bytes]:
    if isinstance(reference, File):
        # A file the gateway fetched keeps its `source_url`: the bytes are what was vetted.
        return reference.content
    if isinstance(reference, str) and reference.startswith("data:video/"):
        return _decode_data_url(reference)
    if not isinstance(reference, str) or not reference.startswith(("https://", "http://")):
        raise invalid_video()
    file: File = yield FetchReference(reference, _PARAM, SOURCE_TYPES)
    return file.content


def invalid_video() -> InvalidRequestError:
    return InvalidRequestError(
        f"{_PARAM} must be an MP4/MOV video file or an http(s) URL of one",
        param=_PARAM,
        code="invalid_video",
    )


def _decode_data_url(url: str) -> bytes:
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise invalid_video()
    return translated(
        lambda: base64.b64decode(data, validate=True),
        (binascii.Error, ValueError),
        lambda _: invalid_video(),
    )
