"""Topaz Labs Video API: enhance (upscale) a video the caller supplies.

Wire format: PROVIDERS.md §10. The source video comes vetted (`VideoCall.source`: read from
bytes reapi holds and held to the model's length by `_source_video`, as on every route of the
model). Submitting is four steps inside one create attempt:

1. `POST /video/` with the source's metadata (read from the MP4 boxes by `_mp4`), the output
   resolution (the requested tier at the source's aspect ratio) and one filter, the route's
   `upstream_model` (a Topaz model such as `prob-4`, Proteus);
2. `PATCH /video/{id}/accept` reserves Topaz credits and returns signed upload URLs;
3. a `PUT` of each part of the bytes to its URL (without the key), keeping each `ETag`;
4. `PATCH /video/{id}/complete-upload/` with the ETags queues the job.

Then `GET /video/{id}/status` until `complete`, whose `download.url` is the result. Topaz documents
the status field but not its words: the ones below are assumed (UNVERIFIED), and a word reapi does
not know keeps the job in progress rather than failing it, since a failure is resubmitted (and
billed) elsewhere. Errors are FastAPI-style `{"detail": ...}` without codes: mapped by status.
Topaz has no idempotency header.
"""

from __future__ import annotations

import re
from math import ceil
from typing import Any

from .._exceptions import (
    APIResponseError,
    InvalidRequestError,
    QuotaExceededError,
    ReapiError,
)
from ..catalog import Route
from ._base import Adapter, VideoCall
from ._mp4 import VideoInfo
from ._protocol import (
    Batch,
    GeneratedFile,
    Protocol,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._source_video import invalid_video

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
        if call.source is None:  # vetted by the core for every input_video model
            raise invalid_video()
        source, info = call.source.content, call.source.info
        request_id = yield from self._create(call, source, info)
        urls = yield from self._accept(request_id)
        results = yield from self._upload(source, urls, call.source.media_type)
        response = yield UpstreamRequest(
            "PATCH",
            self.connection.url(f"video/{request_id}/complete-upload/"),
            self._headers(),
            json={"uploadResults": results},
        )
        assert response is not None
        self.check(response)
        return request_id

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
