"""Veo on the Gemini API: `models/{model}:predictLongRunning`, then poll the operation.

Wire format: PROVIDERS.md §4. The operation name (`models/.../operations/...`) is the task id.
The finished video is a file URL on the Gemini API that needs the key to download, so its fetch
request carries the key header (only when the URL is on the API's own host). The Gemini API takes
a first frame only as inline bytes, so a reference given as an http(s) URL is refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any
from urllib.parse import urlsplit

from .._detached import translated
from .._exceptions import APIResponseError, InvalidRequestError
from .._payload import File
from ..catalog import Route
from ._base import VideoCall
from ._google import GoogleAdapter
from ._protocol import GeneratedFile, Protocol, TaskStatus, UpstreamRequest
from ._util import b64decode, drop_none, sniff_image_type

__all__ = ["VeoAdapter"]

#: Veo renders take from seconds to minutes; Google's own examples poll every 10 s.
_POLL_AFTER = 10.0
#: What an operation name looks like; anything else is never put into a URL we call with the key.
_OPERATION = re.compile(r"(?:models/[A-Za-z0-9.\-]+/)?operations/[A-Za-z0-9_.\-]+")


class VeoAdapter(GoogleAdapter):
    name = "veo"

    def submit_video(self, call: VideoCall) -> Protocol[str]:
        if call.params.seed is not None:
            # python-genai refuses `seed` for the Gemini API (Vertex only).
            raise InvalidRequestError(
                "seed is not supported by Veo on the Gemini API", param="seed"
            )
        instance = drop_none(
            {
                "prompt": call.payload.get("prompt"),
                "image": _first_frame(call.payload.get("input_reference")),
            }
        )
        parameters = drop_none(
            {
                "aspectRatio": call.shape.aspect_ratio,
                "durationSeconds": call.shape.seconds,
                "resolution": call.shape.resolution,
                "sampleCount": 1,
            }
        )
        url = self.connection.url(f"models/{call.route.upstream_model}:predictLongRunning")
        body = {"instances": [instance], "parameters": parameters}
        response = yield UpstreamRequest("POST", url, self._headers(), json=body)
        assert response is not None
        answer = self.check(response).json(self.provider)
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not _OPERATION.fullmatch(name):
            raise APIResponseError(
                "the provider returned no operation name", provider=self.provider
            )
        return name

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        if not _OPERATION.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no Veo operation", param="video_id", code="not_found"
            )
        request = UpstreamRequest(
            "GET", self.connection.url(task_id), self._headers(), purpose="poll"
        )
        response = yield request
        assert response is not None
        body = self.check(response).json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError(
                "the provider's operation is not an object", provider=self.provider
            )
        if not body.get("done"):
            return TaskStatus(state="in_progress", poll_after=_POLL_AFTER)
        if body.get("error"):
            return TaskStatus(state="failed", error_code="generation_failed")
        result = body.get("response")
        videos = result.get("generateVideoResponse") if isinstance(result, dict) else None
        videos = videos if isinstance(videos, dict) else {}
        samples = videos.get("generatedSamples")
        outputs = tuple(
            output
            for sample in (samples if isinstance(samples, list) else ())
            if (output := self._output(sample)) is not None
        )
        if outputs:
            return TaskStatus(state="completed", progress=100, outputs=outputs)
        if videos.get("raiMediaFilteredReasons") or videos.get("raiMediaFilteredCount"):
            return TaskStatus(
                state="failed", error_code="content_policy_violation", content_blocked=True
            )
        return TaskStatus(state="failed", error_code="generation_failed")

    def _output(self, sample: Any) -> GeneratedFile | None:
        video = sample.get("video") if isinstance(sample, dict) else None
        if not isinstance(video, dict):
            return None
        uri = video.get("uri")
        if isinstance(uri, str) and uri.startswith(("https://", "http://")):
            lifetime = self.connection.url_lifetime_seconds
            # The key only goes to the API's own host, whatever URL an answer names.
            same_host = urlsplit(uri).netloc == urlsplit(self.connection.base_url).netloc
            return GeneratedFile(
                "video/mp4",
                url=uri,
                fetch=UpstreamRequest(
                    "GET",
                    uri,
                    self._headers() if same_host else {},
                    purpose="download",
                    download=True,
                ),
                url_expires_at=int(time.time()) + lifetime if lifetime else None,
            )
        encoded = video.get("encodedVideo")
        if isinstance(encoded, str):
            content_type = str(video.get("encoding") or "video/mp4")
            return GeneratedFile(content_type, data=b64decode(encoded, self.provider))
        return None


def _first_frame(reference: File | str | None) -> dict[str, str] | None:
    """The first frame as the Gemini API wants it: inline base64 bytes and their type."""
    if reference is None:
        return None
    if isinstance(reference, str):
        if not reference.startswith("data:"):
            raise InvalidRequestError(
                "Veo on the Gemini API takes the first frame only as image bytes, not a URL; "
                "upload the image file (or a data: URL) as input_reference",
                param="input_reference",
                code="unsupported_value",
            )
        reference = _from_data_url(reference)
    if sniff_image_type(reference.content) is None:
        raise InvalidRequestError(
            "input_reference must be a PNG, JPEG or WebP image for this model",
            param="input_reference",
            code="invalid_image",
        )
    return {
        "bytesBase64Encoded": base64.b64encode(reference.content).decode(),
        "mimeType": sniff_image_type(reference.content) or reference.content_type,
    }


def _from_data_url(url: str) -> File:
    header, _, data = url.partition(",")

    def refusal(_: BaseException | None = None) -> InvalidRequestError:
        return InvalidRequestError(
            "input_reference data: URL must be base64-encoded", param="input_reference"
        )

    if not header.endswith(";base64"):
        raise refusal()
    content = translated(
        lambda: base64.b64decode(data, validate=True), (binascii.Error, ValueError), refusal
    )
    return File(content, "input_reference", header[5:].removesuffix(";base64"))
