"""BytePlus ModelArk ("Ark"): Seedream images (synchronous) and Seedance video tasks.

Wire format: PROVIDERS.md §5 (`POST images/generations`) and §6 (`contents/generations/tasks`).
The Volcengine China endpoint speaks the same API, so it is this adapter with another base URL.

Seedream makes `n > 1` images as one "sequential" batch; a batch image the filter rejects comes
back as an item with an error code instead of a URL, and the rest still arrive. Seedance takes its
settings as body fields only: the older `--flags` inside the prompt are validated loosely (a bad
value silently becomes the default), which would break the promise that what reapi accepts is what
the upstream renders. Ark has no idempotency header, so create calls carry none.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .._exceptions import APIResponseError, ContentPolicyError, InvalidRequestError, ReapiError
from .._payload import File
from ..catalog import Route
from ._base import Adapter, ImageCall, VideoCall, _safe_code
from ._protocol import (
    GeneratedFile,
    ImageResult,
    Protocol,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._reference import image_url
from ._util import b64decode, content_type_for, drop_none

__all__ = ["ArkAdapter", "is_sensitive_code"]

_TASK_STATES: dict[str, TaskState] = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "failed",
}
#: Stable codes for tasks that ended without a video for reasons other than the model failing.
_ENDED_CODES = {"cancelled": "cancelled", "expired": "expired"}
#: Seedance renders take one to several minutes.
_POLL_AFTER = 5.0
#: What a task id looks like (`cgt-2025...`); anything else is never put into a URL.
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")
#: Exact pixels, as Seedream's `size` takes them (`2048x2048`).
_PIXELS = re.compile(r"[1-9][0-9]{2,4}x[1-9][0-9]{2,4}")
#: A sequential batch counts input references and outputs together.
_MAX_IMAGES_PER_CALL = 15


def is_sensitive_code(code: str | None) -> bool:
    """Ark's content-filter codes: `SensitiveContentDetected`, its Input/Output variants, each
    with or without a `.Reason` suffix (`InputVideoSensitiveContentDetected.PrivacyInformation`)."""
    return code is not None and code.split(".", 1)[0].endswith("SensitiveContentDetected")


class ArkAdapter(Adapter):
    name = "ark"
    quota_codes = frozenset({"AccountOverdueError"})

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.connection.api_key.reveal()}"}

    def probe(self, route: Route) -> UpstreamRequest:
        """One task of the account's task list (`GET /contents/generations/tasks`, page size 1):
        Ark's data plane has no model listing. One probe serves every BytePlus route."""
        url = self.connection.url("contents/generations/tasks?page_num=1&page_size=1")
        return UpstreamRequest("GET", url, self._headers(), purpose="probe")

    # -- errors ------------------------------------------------------------------------------
    def error_code(self, response: UpstreamResponse) -> str | None:
        body = self._json_object(response)
        # The Ark SDK reads `body.get("error", body)`: the code may sit at either level.
        error = body.get("error", body)
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        code = self.error_code(response)
        if is_sensitive_code(code):
            return ContentPolicyError(
                f"{self.provider} answered HTTP {response.status}: blocked by its content policy",
                provider=self.provider,
                status=response.status,
                request_id=self.request_id(response),
                provider_code=_safe_code(code),
            )
        return super().error_for(response)

    def _expiry(self, issued_at: object) -> int | None:
        """When a result URL stops working: Ark signs it for a fixed lifetime from issue time."""
        lifetime = self.connection.url_lifetime_seconds
        if not lifetime:
            return None
        start = issued_at if isinstance(issued_at, int) and issued_at > 0 else int(time.time())
        return min(start, int(time.time())) + lifetime

    # -- Seedream images ---------------------------------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        body = self._image_body(call)
        url = self.connection.url("images/generations")
        response = yield UpstreamRequest("POST", url, self._headers(), json=body)
        assert response is not None
        return self._image_result(self.check(response), call)

    def _image_body(self, call: ImageCall) -> dict[str, Any]:
        params = call.params
        _refuse_openai_only(call, seed_allowed=bool(call.route.options.get("seed")))
        images: tuple[File, ...] = call.payload.get("images") or ()
        if params.n > 1 and len(images) + params.n > _MAX_IMAGES_PER_CALL:
            raise InvalidRequestError(
                f"input images plus n must be at most {_MAX_IMAGES_PER_CALL} for this model",
                param="n",
            )
        body = drop_none(
            {
                "model": call.route.upstream_model,
                "prompt": call.payload.get("prompt"),
                "image": [image_url(f, param="image") for f in images] or None,
                "size": _seedream_size(call),
                "seed": params.seed,
                "output_format": params.output_format,
                # URLs, not base64: smaller answers; reapi fetches them when bytes were asked for.
                "response_format": "url",
                "watermark": False,
            }
        )
        if params.n > 1:
            body["sequential_image_generation"] = "auto"
            body["sequential_image_generation_options"] = {"max_images": params.n}
        return body

    def _image_result(self, response: UpstreamResponse, call: ImageCall) -> ImageResult:
        body = response.json(self.provider)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise APIResponseError(
                "the provider's answer has no image list", provider=self.provider
            )
        content_type = content_type_for(call.params.output_format, default="image/jpeg")
        expires = self._expiry(body.get("created", body.get("created_at")))
        images: list[GeneratedFile] = []
        failures: list[str] = []
        size = None
        for item in body["data"]:
            if not isinstance(item, dict):
                continue
            error = item.get("error")
            if isinstance(error, dict):
                failures.append(str(error.get("code") or ""))
                continue
            if isinstance(item.get("b64_json"), str):
                encoded = item["b64_json"]
                data = b64decode(encoded, self.provider)
                images.append(GeneratedFile(content_type, data=data, b64=encoded))
            elif isinstance(item.get("url"), str):
                url = item["url"]
                # A presigned object-storage URL: it must not be sent our key.
                fetch = UpstreamRequest("GET", url, purpose="download", download=True)
                images.append(
                    GeneratedFile(content_type, url=url, fetch=fetch, url_expires_at=expires)
                )
            else:
                continue
            size = size or (item.get("size") if isinstance(item.get("size"), str) else None)
        if not images:
            raise self._no_image(response, failures)
        return ImageResult(
            images=tuple(images),
            usage=_int_fields(body.get("usage")),
            output_format=call.params.output_format or "jpeg",  # Seedream's default
            size=size,
        )

    def _no_image(self, response: UpstreamResponse, failures: list[str]) -> ReapiError:
        blocked = next((code for code in failures if is_sensitive_code(code)), None)
        if blocked is not None:
            return ContentPolicyError(
                f"{self.provider} blocked the images under its content policy",
                provider=self.provider,
                status=response.status,
                provider_code=_safe_code(blocked),
            )
        return APIResponseError(
            "the provider returned no image",
            provider=self.provider,
            status=response.status,
            provider_code=_safe_code(failures[0] if failures else None),
        )

    # -- Seedance videos ---------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        if call.params.seed is not None and not call.route.options.get("seed"):
            raise InvalidRequestError("seed is not supported by this model", param="seed")
        content: list[dict[str, Any]] = []
        prompt = call.payload.get("prompt")
        if prompt:
            content.append({"type": "text", "text": prompt})
        reference = call.payload.get("input_reference")
        if reference is not None:
            content.append(
                {
                    "type": "image_url",
                    "image_url": {"url": image_url(reference, param="input_reference")},
                    "role": "first_frame",
                }
            )
        body = drop_none(
            {
                "model": call.route.upstream_model,
                "content": content,
                "resolution": call.shape.resolution,
                "ratio": call.shape.aspect_ratio,
                "duration": call.shape.seconds,
                "seed": call.params.seed,
                "watermark": False,
            }
        )
        url = self.connection.url("contents/generations/tasks")
        response = yield UpstreamRequest("POST", url, self._headers(), json=body)
        assert response is not None
        answer = self.check(response).json(self.provider)
        task_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise APIResponseError("the provider returned no task id", provider=self.provider)
        return task_id

    def _task_url(self, task_id: str) -> str:
        if not _TASK_ID.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no Ark task", param="video_id", code="not_found"
            )
        return self.connection.url(f"contents/generations/tasks/{task_id}")

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        url = self._task_url(task_id)
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        task = self.check(response).json(self.provider)
        if not isinstance(task, dict):
            raise APIResponseError("the provider's task is not an object", provider=self.provider)
        status = str(task.get("status"))
        state = _TASK_STATES.get(status)
        if state is None:
            raise APIResponseError("the provider's task status is unknown", provider=self.provider)
        seconds = task.get("duration") if isinstance(task.get("duration"), int) else None
        if state in ("queued", "in_progress"):
            return TaskStatus(state=state, poll_after=_POLL_AFTER, seconds=seconds)
        if state == "failed":
            return _failed(status, task.get("error"))
        content = task.get("content")
        video_url = content.get("video_url") if isinstance(content, dict) else None
        if not isinstance(video_url, str) or not video_url.startswith(("https://", "http://")):
            return TaskStatus(state="failed", error_code="generation_failed")
        video = GeneratedFile(
            "video/mp4",
            url=video_url,
            # Presigned object-storage URL: no key goes with it.
            fetch=UpstreamRequest("GET", video_url, purpose="download", download=True),
            url_expires_at=self._expiry(task.get("updated_at")),
        )
        return TaskStatus(state="completed", progress=100, outputs=(video,), seconds=seconds)

    def cancel_video(self, route: Route, task_id: str) -> Protocol[None]:
        """Ark cancels queued tasks and deletes finished ones; a running task cannot be
        stopped (it answers 4xx), which is not an error for a best-effort cancel."""
        url = self._task_url(task_id)
        response = yield UpstreamRequest("DELETE", url, self._headers(), purpose="cancel")
        assert response is not None
        if response.status not in (400, 404, 409):
            self.check(response)


def _failed(status: str, error: object) -> TaskStatus:
    code = error.get("code") if isinstance(error, dict) else None
    if is_sensitive_code(code if isinstance(code, str) else None):
        return TaskStatus(
            state="failed", error_code="content_policy_violation", content_blocked=True
        )
    return TaskStatus(state="failed", error_code=_ENDED_CODES.get(status, "generation_failed"))


def _seedream_size(call: ImageCall) -> str | None:
    """Exact pixels when the request named WxH, else the tier (2K/3K/4K); never both."""
    size = call.shape.size
    if size and _PIXELS.fullmatch(size):
        return size
    return call.shape.resolution


def _refuse_openai_only(call: ImageCall, *, seed_allowed: bool) -> None:
    """OpenAI options Seedream has no equivalent for: refused, never silently dropped."""
    params = call.params
    unsupported = {
        "output_compression": params.output_compression is not None,
        "moderation": params.moderation not in (None, "auto"),
        "input_fidelity": params.input_fidelity is not None,
        "seed": params.seed is not None and not seed_allowed,
    }
    for param, present in unsupported.items():
        if present:
            raise InvalidRequestError(f"{param} is not supported by this model", param=param)


def _int_fields(usage: object) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    kept = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
    return kept or None
