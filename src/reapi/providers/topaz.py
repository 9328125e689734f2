"""Topaz Labs Video API: enhance (upscale) a video the caller supplies.

Wire format: PROVIDERS.md §10. Submitting is five steps inside one create attempt:

1. the source video: the uploaded file, a `data:video/...;base64,` URL, or the caller's http(s)
   URL fetched first (through the engine's safe fetcher, without any key);
2. `POST /video/` with the source's metadata (read from the MP4 boxes by `_mp4`), the output
   resolution (the requested tier at the source's aspect ratio) and one filter, the route's
   `upstream_model` (a Topaz model such as `prob-4`, Proteus);
3. `PATCH /video/{id}/accept` reserves Topaz credits and returns signed upload URLs;
4. a `PUT` of each part of the bytes to its URL (without the key), keeping each `ETag`;
5. `PATCH /video/{id}/complete-upload/` with the ETags queues the job.

Then `GET /video/{id}/status` until `complete`, whose `download.url` is the result. Topaz documents
the status field but not its words: the ones below are assumed (UNVERIFIED), and a word reapi does
not know keeps the job in progress rather than failing it, since a failure is resubmitted (and
billed) elsewhere. Errors are FastAPI-style `{"detail": ...}` without codes: mapped by status.
Topaz has no idempotency header.
"""

from __future__ import annotations

import base64
import binascii
import re
from math import ceil
from typing import Any

from .._detached import translated
from .._exceptions import (
    APIResponseError,
    InvalidRequestError,
    QuotaExceededError,
    ReapiError,
)
from .._payload import File
from ..catalog import Route
from ._base import Adapter, VideoCall
from ._mp4 import Mp4Error, VideoInfo, read_video_info
from ._protocol import (
    Batch,
    FetchReference,
    GeneratedFile,
    Protocol,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)

__all__ = ["TopazAdapter"]

# UNVERIFIED status words (seen in third-party clients, not in Topaz's reference).
_STATES: dict[str, TaskState] = {
    "requested": "queued",
    "accepted": "queued",
    "initializing": "queued",
    "preprocessing": "in_progress",
    "processing": "in_progress",
    "postprocessing": "in_progress",
    "canceling": "in_progress",
    "complete": "completed",
    "completed": "completed",
    "failed": "failed",
    "canceled": "failed",
    "cancelled": "failed",
}
#: Short side of each output tier (the long side follows the source's aspect ratio).
_TIERS = {"720p": 720, "1080p": 1080, "1440p": 1440, "4k": 2160}
_MEDIA_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime"}
#: What a source fetched from a URL may be (the MP4 box reader reads both).
_SOURCE_TYPES = frozenset(_MEDIA_TYPES.values())
#: Used when the request names no resolution.
_DEFAULT_TIER = "1080p"
#: Enhancement runs for minutes.
_POLL_AFTER = 10.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")


class TopazAdapter(Adapter):
    name = "topaz"

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self.connection.api_key.reveal()}

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        if response.status == 402:  # UNVERIFIED: out of Topaz credits
            return QuotaExceededError(
                f"{self.provider} answered HTTP 402: its account is out of credits",
                provider=self.provider,
                status=402,
                request_id=self.request_id(response),
            )
        return super().error_for(response)

    # -- create ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        _refuse_generation_options(call)
        source = yield from self._source(call)
        info = _read(source)
        _check_length(call.route, info)
        request_id = yield from self._create(call, source, info)
        urls = yield from self._accept(request_id)
        results = yield from self._upload(source, urls, _MEDIA_TYPES[info.container])
        response = yield UpstreamRequest(
            "PATCH",
            self.connection.url(f"video/{request_id}/complete-upload/"),
            self._headers(),
            json={"uploadResults": results},
        )
        assert response is not None
        self.check(response)
        return request_id

    def _source(self, call: VideoCall) -> Protocol[bytes]:
        reference = call.payload.get("input_reference")
        if isinstance(reference, File):
            return reference.content
        if isinstance(reference, str) and reference.startswith("data:video/"):
            return _decode_data_url(reference)
        if not isinstance(reference, str) or not reference.startswith(("https://", "http://")):
            raise _invalid_video()
        # The caller's own URL: fetched by the engine's safe fetcher (SSRF checks on every
        # hop, size limit, magic bytes), never with a key.
        file: File = yield FetchReference(reference, "input_reference", _SOURCE_TYPES)
        return file.content

    def _create(self, call: VideoCall, source: bytes, info: VideoInfo) -> Protocol[str]:
        width, height = _target(call.shape.resolution or _DEFAULT_TIER, info)
        body: dict[str, Any] = {
            "source": {
                "container": info.container,
                "size": len(source),
                "duration": info.duration,
                "frameRate": info.frame_rate,
                "frameCount": info.frame_count,
                "resolution": {"width": info.width, "height": info.height},
            },
            "filters": [{"model": call.route.upstream_model}],
            "output": {
                "resolution": {"width": width, "height": height},
                "frameRate": info.frame_rate,
                "audioCodec": "AAC",
                "audioTransfer": "Copy",
                "container": "mp4",
            },
        }
        response = yield UpstreamRequest(
            "POST", self.connection.url("video/"), self._headers(), json=body
        )
        assert response is not None
        answer = self.check(response).json(self.provider)
        request_id = answer.get("requestId") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise APIResponseError("the provider returned no request id", provider=self.provider)
        return request_id

    def _accept(self, request_id: str) -> Protocol[list[str]]:
        response = yield UpstreamRequest(
            "PATCH", self.connection.url(f"video/{request_id}/accept"), self._headers()
        )
        assert response is not None
        answer = self.check(response).json(self.provider)
        urls = answer.get("urls") if isinstance(answer, dict) else None
        if not isinstance(urls, list) or not urls or not all(_is_http(u) for u in urls):
            raise APIResponseError("the provider returned no upload URLs", provider=self.provider)
        return urls

    def _upload(
        self, source: bytes, urls: list[str], media_type: str
    ) -> Protocol[list[dict[str, Any]]]:
        """Even parts, one per signed URL, sent at once; the key never goes with them."""
        part = ceil(len(source) / len(urls))
        puts = tuple(
            UpstreamRequest(
                "PUT",
                url,
                {"Content-Type": media_type},
                content=source[i * part : (i + 1) * part],
            )
            for i, url in enumerate(urls)
        )
        replies: tuple[UpstreamResponse, ...] = yield Batch(puts)
        results = []
        for number, reply in enumerate(replies, start=1):
            if reply.status >= 400:
                raise self.error_for(reply)
            etag = (reply.header("etag") or "").strip('"')
            if not etag:
                raise APIResponseError("an upload returned no ETag", provider=self.provider)
            results.append({"partNum": number, "eTag": etag})
        return results

    # -- poll --------------------------------------------------------------------------------
    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        if not _REQUEST_ID.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no Topaz request", param="video_id", code="not_found"
            )
        url = self.connection.url(f"video/{task_id}/status")
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        body = self.check(response).json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError("the provider's status is not an object", provider=self.provider)
        word = body.get("status")
        state = _STATES.get(word.lower(), "in_progress") if isinstance(word, str) else "in_progress"
        progress = body.get("progress")
        percent = int(progress) if isinstance(progress, int | float) else 0
        if state == "failed":
            code = "cancelled" if str(word).lower().startswith("cancel") else "generation_failed"
            return TaskStatus(state="failed", error_code=code)
        if state == "completed":
            output = self._output(body.get("download"))
            if output is not None:
                return TaskStatus(state="completed", progress=100, outputs=(output,))
            state = "in_progress"  # complete without a link yet: ask again
        return TaskStatus(state=state, progress=max(min(percent, 99), 0), poll_after=_POLL_AFTER)

    def _output(self, download: object) -> GeneratedFile | None:
        if not isinstance(download, dict) or not _is_http(download.get("url")):
            return None
        expires_ms = download.get("expiresAt")
        return GeneratedFile(
            "video/mp4",
            url=download["url"],
            # A signed URL (24 h by default): the key never goes with it.
            fetch=UpstreamRequest("GET", download["url"], purpose="download", download=True),
            url_expires_at=int(expires_ms) // 1000 if isinstance(expires_ms, int) else None,
        )


def _is_http(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://"))


def _invalid_video() -> InvalidRequestError:
    return InvalidRequestError(
        "input_reference must be an MP4/MOV video file or an http(s) URL of one",
        param="input_reference",
        code="invalid_video",
    )


def _decode_data_url(url: str) -> bytes:
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise _invalid_video()
    return translated(
        lambda: base64.b64decode(data, validate=True),
        (binascii.Error, ValueError),
        lambda _: _invalid_video(),
    )


def _read(source: bytes) -> VideoInfo:
    return translated(lambda: read_video_info(source), Mp4Error, lambda _: _invalid_video())


def _refuse_generation_options(call: VideoCall) -> None:
    """Enhancement is driven by the video alone: what only generation takes is refused."""
    for param, given in (
        ("prompt", call.payload.get("prompt") is not None),
        ("seconds", call.params.seconds is not None),
        ("seed", call.params.seed is not None),
    ):
        if given:
            raise InvalidRequestError(
                f"{param} is not supported by {call.params.model}: it enhances the video "
                "given as input_reference",
                param=param,
            )


def _check_length(route: Route, info: VideoInfo) -> None:
    """The catalog prices a request for sources up to the route's `max_source_seconds`."""
    limit = route.options.get("max_source_seconds")
    if isinstance(limit, int | float) and info.duration > limit:
        raise InvalidRequestError(
            f"input_reference is longer than this model takes ({limit:g} s)",
            param="input_reference",
            code="video_too_long",
        )


def _target(tier: str, info: VideoInfo) -> tuple[int, int]:
    """The tier's short side at the source's aspect ratio, both sides even; never a shrink."""
    short = _TIERS.get(tier)
    if short is None:
        raise InvalidRequestError(
            f"resolution must be one of {', '.join(_TIERS)}", param="resolution"
        )
    if min(info.width, info.height) > short:
        raise InvalidRequestError(
            "input_reference is already larger than the requested resolution",
            param="resolution",
        )
    scale = short / min(info.width, info.height)
    width, height = (round(info.width * scale / 2) * 2, round(info.height * scale / 2) * 2)
    return (width, short) if info.width >= info.height else (short, height)
