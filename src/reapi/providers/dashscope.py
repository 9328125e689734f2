"""Alibaba Cloud Model Studio (DashScope) video tasks: Happy Horse on
`services/aigc/video-generation/video-synthesis`, then `tasks/{task_id}`.

Wire format: PROVIDERS.md §9. Creating a task needs `X-DashScope-Async: enable` (DashScope refuses
synchronous calls here). One public model is two upstream models: text-to-video is the route's
`upstream_model`, image-to-video is `options.i2v_model`, picked by whether the request has an
`input_reference`. Image-to-video follows the image's aspect ratio, so a ratio asked for beside a
reference is refused. DashScope reads the first frame from a URL only (public http(s) or its own
`oss://` uploads, Beijing region only): an uploaded file is refused with a message saying so.

Error bodies are `{"code", "message", "request_id"}`; failed tasks carry `output.code`. DashScope
has no idempotency header, and tasks cannot be cancelled once running.
"""

from __future__ import annotations

import re
from typing import Any

from .._exceptions import (
    APIResponseError,
    ConfigurationError,
    InvalidRequestError,
    JobFailedError,
)
from .._payload import File
from ..catalog import Route
from ._base import Adapter, VideoCall
from ._protocol import (
    Protocol,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._util import drop_none

__all__ = ["DashScopeAdapter"]

_STATES: dict[str, TaskState] = {
    "PENDING": "queued",
    "RUNNING": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELED": "failed",
    # DashScope's word for a task id it no longer knows (ids live 24 h).
    "UNKNOWN": "failed",
}
#: Stable codes for tasks that ended without a video for reasons other than the model failing.
_FAILED_CODES = {"CANCELED": "cancelled", "UNKNOWN": "expired"}
#: Alibaba suggests polling every 15 s; renders take a minute or more.
_POLL_AFTER = 15.0
#: Task ids are UUIDs; anything else is never put into a URL.
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")


class DashScopeAdapter(Adapter):
    name = "dashscope"
    # Input or output flagged by DashScope's data inspection, or a suspected IP infringement:
    # never failed over. `DataInspectionFailed` is DashScope's documented code (the lowercase form
    # is its OpenAI-compatible spelling); `IPInfringementSuspect` is UNVERIFIED for video.
    content_policy_codes = frozenset(
        {"DataInspectionFailed", "data_inspection_failed", "IPInfringementSuspect"}
    )
    # The account is overdue, unpaid or out of its allocated quota: fail over.
    quota_codes = frozenset(
        {
            "Arrearage",
            "Throttling.AllocationQuota",
            "PrepaidBillOverdue",
            "PostpaidBillOverdue",
            "CommodityNotPurchased",
        }
    )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.connection.api_key.reveal()}"}

    # -- errors ------------------------------------------------------------------------------
    def error_code(self, response: UpstreamResponse) -> str | None:
        code = self._json_object(response).get("code")
        return code if isinstance(code, str) and code else None

    def request_id(self, response: UpstreamResponse) -> str | None:
        found = self._json_object(response).get("request_id")
        return found if isinstance(found, str) else response.header("x-request-id")

    # -- create ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        response = yield UpstreamRequest(
            "POST",
            self.connection.url("services/aigc/video-generation/video-synthesis"),
            {**self._headers(), "X-DashScope-Async": "enable"},
            json=self._create_body(call),
        )
        assert response is not None
        body = self.check(response).json(self.provider)
        output = body.get("output") if isinstance(body, dict) else None
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise APIResponseError("the provider returned no task id", provider=self.provider)
        if isinstance(output, dict) and output.get("task_status") in ("FAILED", "CANCELED"):
            raise JobFailedError("the provider failed the task at once", provider=self.provider)
        return task_id

    def _create_body(self, call: VideoCall) -> dict[str, Any]:
        reference = call.payload.get("input_reference")
        model = call.route.upstream_model
        media = None
        if reference is not None:
            model = _i2v_model(call.route)
            media = [{"type": "first_frame", "url": _frame_url(reference)}]
            if call.shape.aspect_ratio is not None:
                raise InvalidRequestError(
                    "with input_reference the video takes the image's aspect ratio; "
                    "pass resolution instead of size or aspect_ratio",
                    param="size" if call.params.size else "aspect_ratio",
                )
        resolution = call.shape.resolution
        return {
            "model": model,
            "input": drop_none({"prompt": call.payload.get("prompt"), "media": media}),
            "parameters": drop_none(
                {
                    # DashScope spells tiers with a capital P (`720P`); reapi's catalog with `p`.
                    "resolution": resolution.upper() if resolution else None,
                    "ratio": call.shape.aspect_ratio,
                    "duration": call.shape.seconds,
                    "watermark": False,
                    "seed": call.params.seed,
                }
            ),
        }

    # -- poll --------------------------------------------------------------------------------
    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        if not _TASK_ID.fullmatch(task_id):
            raise InvalidRequestError(
                "no such video: this id names no DashScope task",
                param="video_id",
                code="not_found",
            )
        url = self.connection.url(f"tasks/{task_id}")
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        body = self.check(response).json(self.provider)
        output = body.get("output") if isinstance(body, dict) else None
        if not isinstance(output, dict):
            raise APIResponseError("the provider's task has no output", provider=self.provider)
        word = output.get("task_status")
        state = _STATES.get(word) if isinstance(word, str) else None
        if state is None:
            raise APIResponseError("the provider's task status is unknown", provider=self.provider)
        if state in ("queued", "in_progress"):
            return TaskStatus(state=state, poll_after=_POLL_AFTER)
        if state == "failed":
            if output.get("code") in self.content_policy_codes:
                return TaskStatus(
                    state="failed", error_code="content_policy_violation", content_blocked=True
                )
            return TaskStatus(
                state="failed", error_code=_FAILED_CODES.get(str(word), "generation_failed")
            )
        video = output.get("video_url")
        if not isinstance(video, str) or not video.startswith(("https://", "http://")):
            return TaskStatus(state="failed", error_code="generation_failed")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        seconds = usage.get("output_video_duration") or usage.get("duration")
        return TaskStatus(
            state="completed",
            progress=100,
            # A signed OSS URL (24 h): the key never goes with it.
            outputs=(self._keyless_file("video/mp4", video),),
            seconds=seconds if isinstance(seconds, int) and seconds > 0 else None,
        )


def _i2v_model(route: Route) -> str:
    model = route.options.get("i2v_model")
    if not isinstance(model, str) or not model:
        raise ConfigurationError(
            f"route {route.key} takes input_reference but names no options.i2v_model",
            provider=route.provider,
        )
    return model


def _frame_url(reference: object) -> str:
    if isinstance(reference, str) and reference.startswith(("https://", "http://")):
        return reference
    if isinstance(reference, File) and reference.source_url:
        return reference.source_url  # the gateway fetched (and vetted) the caller's URL
    raise InvalidRequestError(
        "DashScope reads the first frame from a URL only: pass input_reference as an https URL "
        "of a PNG, JPEG or WebP image",
        param="input_reference",
        code="invalid_image",
    )
