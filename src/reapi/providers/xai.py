"""xAI Grok Imagine: images (`images/generations`, `images/edits`) and video tasks
(`videos/generations`, then `videos/{request_id}`).

Wire format: PROVIDERS.md §8. Images are JSON both ways: an edit sends its input images as
`image: {"url", "type": "image_url"}` (one) or `images: [...]` (two or three), as data URLs or the
caller's own URLs. xAI takes an aspect ratio and a `1k`/`2k` tier, never `size`. Results are
always asked for as `b64_json`, so nothing waits on xAI's temporary URLs.

xAI moderates silently: a blocked image comes back as an item marked `respect_moderation: false`
(or no item at all), and a blocked video as a finished task whose `video.respect_moderation` is
false. Both are content blocks here, never successes. xAI has no idempotency header and no cancel
call for video requests.
"""

from __future__ import annotations

import re
from typing import Any

from .._exceptions import (
    APIResponseError,
    AuthenticationError,
    ContentPolicyError,
    InvalidRequestError,
    ReapiError,
)
from .._payload import File
from ..catalog import Route
from ._base import Adapter, ImageCall, VideoCall
from ._protocol import (
    GeneratedFile,
    ImageResult,
    Protocol,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._reference import image_url
from ._util import b64decode, drop_none, sniff_image_type

__all__ = ["XAIAdapter"]

#: Request ids are UUIDs; anything else is never put into a URL.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")
#: Grok Imagine videos take tens of seconds to a few minutes.
_POLL_AFTER = 5.0
#: The phrase xAI's legacy error shape (`{"code": <status text>, "error": <message>}`) uses for a
#: safety refusal; that shape has no machine code, and a 403 would otherwise fail over. The
#: message is read for this phrase only and never kept.
_GUIDELINES = "violates usage guidelines"


class XAIAdapter(Adapter):
    name = "xai"
    # UNVERIFIED: xAI documents no content-policy code; these are the OpenAI-style codes relays
    # report, plus the code reapi gives the legacy-shape safety refusal (see `error_code`).
    content_policy_codes = frozenset(
        {"content_policy_violation", "content_moderation", "moderation_blocked"}
    )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.connection.api_key.reveal()}"}

    def probe(self, route: Route) -> UpstreamRequest:
        """`GET /models`, the models the key may use (one probe serves every xAI route)."""
        return UpstreamRequest(
            "GET", self.connection.url("models"), self._headers(), purpose="probe"
        )

    # -- errors ------------------------------------------------------------------------------
    def error_code(self, response: UpstreamResponse) -> str | None:
        body = self._json_object(response)
        error = body.get("error")
        if isinstance(error, dict):  # OpenAI-style {"error": {"message", "type", "code"}}
            code = error.get("code") or error.get("type")
            return code if isinstance(code, str) else None
        if isinstance(error, str):  # legacy shape: `code` is a status text; read to classify
            if _GUIDELINES in error.lower():
                return "content_policy_violation"
            if "api key" in error.lower():
                return "invalid_api_key"
        code = body.get("code")
        return code if isinstance(code, str) else None

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        # xAI answers a wrong key with 400 (UNVERIFIED) in its legacy shape: still our key's fault.
        if self.error_code(response) == "invalid_api_key":
            return AuthenticationError(
                f"{self.provider} answered HTTP {response.status}: the API key was refused",
                provider=self.provider,
                status=response.status,
                request_id=self.request_id(response),
                provider_code="invalid_api_key",
            )
        return super().error_for(response)

    # -- images ------------------------------------------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        _refuse_image_options(call)
        fields = drop_none(
            {
                "model": call.route.upstream_model,
                "prompt": call.payload.get("prompt"),
                "n": call.params.n,
                "aspect_ratio": call.shape.aspect_ratio,
                "resolution": call.shape.resolution,
                "response_format": "b64_json",
                "user": call.payload.get("user"),
            }
        )
        path = "images/generations"
        if call.edit:
            path = "images/edits"
            fields.update(_input_images(call))
        response = yield UpstreamRequest(
            "POST", self.connection.url(path), self._headers(), json=fields
        )
        assert response is not None
        return self._image_result(self.check(response))

    def _image_result(self, response: UpstreamResponse) -> ImageResult:
        body = response.json(self.provider)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise APIResponseError(
                "the provider's answer has no image list", provider=self.provider
            )
        images = [file for item in data if (file := self._image(item)) is not None]
        if images:
            return ImageResult(images=tuple(images), output_format=_format_of(images[0]))
        # Whole request blocked: an empty list, or only items without a payload.
        raise ContentPolicyError(
            f"{self.provider} blocked the images under its content policy",
            provider=self.provider,
            status=response.status,
            provider_code="respect_moderation",
        )

    def _image(self, item: object) -> GeneratedFile | None:
        if not isinstance(item, dict) or item.get("respect_moderation") is False:
            return None
        encoded = item.get("b64_json")
        if isinstance(encoded, str) and encoded:
            # Sometimes sent as a whole data URL rather than bare base64.
            data = b64decode(
                encoded.split(",", 1)[1] if encoded.startswith("data:") else encoded, self.provider
            )
            return GeneratedFile(sniff_image_type(data) or "image/jpeg", data=data)
        url = item.get("url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            # Temporary URL (no lifetime given): fetched at once, without the key.
            return GeneratedFile(
                "image/jpeg", url=url, fetch=UpstreamRequest("GET", url, purpose="download")
            )
        return None

    # -- video -------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        if call.params.seed is not None:
            raise _unsupported(call.route, "seed")
        reference = call.payload.get("input_reference")
        if reference is not None and call.shape.aspect_ratio is not None:
            raise InvalidRequestError(
                "with input_reference the video takes the image's aspect ratio; "
                "pass resolution instead of size or aspect_ratio",
                param="size" if call.params.size else "aspect_ratio",
            )
        body = drop_none(
            {
                "model": call.route.upstream_model,
                "prompt": call.payload.get("prompt"),
                "duration": call.shape.seconds,
                "aspect_ratio": call.shape.aspect_ratio,
                "resolution": call.shape.resolution,
                "image": {"url": image_url(reference, param="input_reference")}
                if reference is not None
                else None,
            }
        )
        response = yield UpstreamRequest(
            "POST", self.connection.url("videos/generations"), self._headers(), json=body
        )
        assert response is not None
        answer = self.check(response).json(self.provider)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise APIResponseError("the provider returned no request id", provider=self.provider)
        return request_id

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        if not _REQUEST_ID.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no xAI request", param="video_id", code="not_found"
            )
        url = self.connection.url(f"videos/{task_id}")
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        self.check(response)
        if response.status == 202 and not response.content.strip():
            return TaskStatus(state="queued", poll_after=_POLL_AFTER)  # accepted, not started
        body = response.json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError(
                "the provider's video status is not an object", provider=self.provider
            )
        return self._status(body)

    def _status(self, body: dict[str, Any]) -> TaskStatus:
        status = body.get("status")
        found = body.get("video")
        video: dict[str, Any] = found if isinstance(found, dict) else {}
        seconds = video.get("duration")
        seconds = int(seconds) if isinstance(seconds, int | float) and seconds > 0 else None
        if status == "done" or (status is None and video.get("url")):
            if video.get("respect_moderation") is False:
                return TaskStatus(
                    state="failed", error_code="content_policy_violation", content_blocked=True
                )
            url = video.get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                return TaskStatus(state="failed", error_code="generation_failed")
            # A temporary public URL: the key never goes with it.
            video_file = self._keyless_file("video/mp4", url)
            return TaskStatus(
                state="completed", progress=100, outputs=(video_file,), seconds=seconds
            )
        if status == "failed":
            error = body.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if code in self.content_policy_codes:
                return TaskStatus(
                    state="failed", error_code="content_policy_violation", content_blocked=True
                )
            return TaskStatus(state="failed", error_code="generation_failed")
        if status == "expired":
            return TaskStatus(state="failed", error_code="expired")
        if status in ("pending", "processing"):
            progress = body.get("progress")
            progress = int(progress) if isinstance(progress, int | float) else 0
            started = progress > 0 or status == "processing"
            return TaskStatus(
                state="in_progress" if started else "queued",
                progress=max(min(progress, 99), 0),
                poll_after=_POLL_AFTER,
            )
        raise APIResponseError("the provider's video status is unknown", provider=self.provider)


def _unsupported(route: Route, param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{param} is not supported by this model on {route.provider}", param=param
    )


def _refuse_image_options(call: ImageCall) -> None:
    """OpenAI options xAI has no field for: refused, never dropped. (Quality, output format and
    background are refused by the catalog, which lists none for these models.)"""
    params = call.params
    present = {
        "seed": params.seed is not None,
        "output_compression": params.output_compression is not None,
        "input_fidelity": params.input_fidelity is not None,
        "moderation": params.moderation not in (None, "auto"),
    }
    for name, given in present.items():
        if given:
            raise _unsupported(call.route, name)


def _input_images(call: ImageCall) -> dict[str, Any]:
    """One input image is `image`; two or three are `images` (xAI refuses both at once)."""
    files: tuple[File, ...] = call.payload.get("images") or ()
    refs = [{"url": image_url(f, param="image"), "type": "image_url"} for f in files]
    if len(refs) == 1:
        if call.shape.aspect_ratio is not None:
            # A single-image edit keeps the input's aspect ratio (UNVERIFIED that xAI refuses it).
            raise InvalidRequestError(
                "an edit of one image keeps that image's aspect ratio; "
                "omit size and aspect_ratio, or pass two or three images",
                param="size" if call.params.size else "aspect_ratio",
            )
        return {"image": refs[0]}
    return {"images": refs}


def _format_of(image: GeneratedFile) -> str:
    return {"image/png": "png", "image/webp": "webp"}.get(image.content_type, "jpeg")
