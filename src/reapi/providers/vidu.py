"""Vidu (Shengshu) video tasks on `api.vidu.com`: `ent/v2/text2video` or `ent/v2/img2video`,
then `ent/v2/tasks/{id}/creations`.

Wire format: PROVIDERS.md §7. The key goes as `Authorization: Token ...`, not Bearer. reapi's
video surface has one `input_reference`, so a request is text-to-video without it and
image-to-video (one image) with it; Vidu's start-end and multi-reference endpoints take two or
more images and are not reachable through that surface. Image-to-video takes its aspect ratio
from the image, so a ratio asked for alongside a reference is refused rather than ignored.
Vidu has no idempotency header and no documented cancel call for ordinary tasks.
"""

from __future__ import annotations

import re
from typing import Any

from .._exceptions import (
    APIResponseError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    ReapiError,
)
from ..catalog import Route
from ._base import Adapter, VideoCall
from ._protocol import (
    GeneratedFile,
    Protocol,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._reference import image_url
from ._util import drop_none

__all__ = ["ViduAdapter"]

_STATES: dict[str, TaskState] = {
    "created": "queued",
    "queueing": "queued",
    "processing": "in_progress",
    "success": "completed",
    "failed": "failed",
}
#: Vidu renders take about a minute; excess tasks wait in `queueing` (5 concurrent by default).
_POLL_AFTER = 5.0
#: Task ids are long decimal strings; anything else is never put into a URL.
_TASK_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
#: Vidu decodes inline base64 images only below 10 MB.
_MAX_INLINE_IMAGE = 10_000_000
#: 400 codes that mean "this model cannot run here now", not "the request is wrong".
_UNAVAILABLE = frozenset({"ModelUnavailable"})


class ViduAdapter(Adapter):
    name = "vidu"
    # Prompt refused, input image refused, output flagged: never failed over.
    content_policy_codes = frozenset(
        {"TaskPromptPolicyViolation", "AuditSubmitIllegal", "CreationPolicyViolation"}
    )
    # 400 CreditInsufficient: this account is out of credit. (429 `QuotaExceeded` is Vidu's
    # concurrency limit, a rate limit.)
    quota_codes = frozenset({"CreditInsufficient"})

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.connection.api_key.reveal()}"}

    def error_code(self, response: UpstreamResponse) -> str | None:
        body = self._json_object(response)
        # Vidu documents the codes, not the body's shape: read the usual places for a code word.
        nested = body.get("error")
        error: dict[str, Any] = nested if isinstance(nested, dict) else body
        for key in ("reason", "code", "err_code"):
            value = error.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        code = self.error_code(response)
        if code in _UNAVAILABLE:
            return NotFoundError(
                f"{self.provider} answered HTTP {response.status}: the model is unavailable",
                provider=self.provider,
                status=response.status,
                request_id=self.request_id(response),
                provider_code=code,
            )
        return super().error_for(response)

    # -- create ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        path, body = self._create_body(call)
        response = yield UpstreamRequest(
            "POST", self.connection.url(path), self._headers(), json=body
        )
        assert response is not None
        answer = self.check(response).json(self.provider)
        if not isinstance(answer, dict):
            raise APIResponseError("the provider's answer is not an object", provider=self.provider)
        task_id = answer.get("task_id")
        task_id = str(task_id) if isinstance(task_id, int | str) else None
        if not task_id or not _TASK_ID.fullmatch(task_id):
            raise APIResponseError("the provider returned no task id", provider=self.provider)
        if answer.get("state") == "failed":
            raise JobFailedError("the provider failed the task at once", provider=self.provider)
        return task_id

    def _create_body(self, call: VideoCall) -> tuple[str, dict[str, Any]]:
        reference = call.payload.get("input_reference")
        aspect_ratio = call.shape.aspect_ratio
        images = None
        path = "ent/v2/text2video"
        if reference is not None:
            if aspect_ratio is not None:
                raise InvalidRequestError(
                    "with input_reference Vidu takes the aspect ratio from the image; "
                    "pass resolution instead of size or aspect_ratio",
                    param="size" if call.params.size else "aspect_ratio",
                )
            path = "ent/v2/img2video"
            images = [image_url(reference, param="input_reference", max_bytes=_MAX_INLINE_IMAGE)]
        body = drop_none(
            {
                "model": call.route.upstream_model,
                "prompt": call.payload.get("prompt"),
                "images": images,
                "duration": call.shape.seconds,
                "seed": call.params.seed,
                "aspect_ratio": aspect_ratio,
                "resolution": call.shape.resolution,
                # Native audio exists on Q3 only; the catalog says per route whether to ask.
                "audio": call.route.options.get("audio"),
                "watermark": False,
            }
        )
        return path, body

    # -- poll --------------------------------------------------------------------------------
    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        if not _TASK_ID.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no Vidu task", param="video_id", code="not_found"
            )
        url = self.connection.url(f"ent/v2/tasks/{task_id}/creations")
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        task = self.check(response).json(self.provider)
        if not isinstance(task, dict):
            raise APIResponseError("the provider's task is not an object", provider=self.provider)
        state = _STATES.get(str(task.get("state")))
        if state is None:
            raise APIResponseError("the provider's task state is unknown", provider=self.provider)
        if state in ("queued", "in_progress"):
            return TaskStatus(state=state, poll_after=_POLL_AFTER)
        if state == "failed":
            code = task.get("err_code")
            if code in self.content_policy_codes:
                return TaskStatus(
                    state="failed", error_code="content_policy_violation", content_blocked=True
                )
            return TaskStatus(state="failed", error_code="generation_failed")
        creations = task.get("creations")
        creations = (
            [c for c in creations if isinstance(c, dict)] if isinstance(creations, list) else []
        )
        outputs = tuple(
            file for c in creations if (file := self._file(c.get("url"), "video/mp4")) is not None
        )
        if not outputs:
            return TaskStatus(state="failed", error_code="generation_failed")
        thumbnail = self._file(creations[0].get("cover_url"), "image/jpeg")
        return TaskStatus(state="completed", progress=100, outputs=outputs, thumbnail=thumbnail)

    def _file(self, url: object, content_type: str) -> GeneratedFile | None:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return None
        return self._keyless_file(content_type, url)  # a signed CDN URL: no key goes with it
