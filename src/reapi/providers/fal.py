"""fal.ai's queue (`https://queue.fal.run`): a generic second host for many makers' models.

Wire format: PROVIDERS.md §11. Every model runs through the same queue: submit
`POST {base}/{model path}` with the model's own input (built by `_host_inputs`, chosen per route
with `options.input_map`), poll the returned `status_url` (202 `IN_QUEUE` / `IN_PROGRESS`, then
200 `COMPLETED`), then read the returned `response_url`, which answers with the model's output
or with the model's error and its original status. fal is asynchronous even for images: the image
operation polls with `Sleep` steps until the result is in or `options.max_wait` seconds passed.

A video's task id is its `response_url` path under the base URL; status and cancel live beside it
(`.../status`, `.../cancel`), which submit checks against the URLs fal returned. The key goes only
to URLs under the configured base; result media live on fal's CDN and are fetched without it.

Errors: `{"detail": [{"loc", "msg", "type", ...}]}`; `content_policy_violation` (422) is a block
and never failed over. `X-Fal-Retryable` says whether repeating the same request *on fal* may
help; reapi never repeats a request on the route that failed, and a 5xx still moves on to the
next host (which runs other code), so the header changes nothing here. fal has no idempotency
header, so creates carry none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from .._exceptions import (
    APIResponseError,
    APITimeoutError,
    ContentPolicyError,
    InvalidRequestError,
    QuotaExceededError,
    ReapiError,
)
from ..catalog import Route
from ._base import Adapter, ImageCall, VideoCall, _safe_code
from ._host_inputs import FAL_INPUTS, HostInput, input_map, route_seconds
from ._protocol import (
    GeneratedFile,
    ImageResult,
    Protocol,
    Sleep,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._util import content_type_for

__all__ = ["FalAdapter"]

QueueState = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
_STATES: frozenset[str] = frozenset({"IN_QUEUE", "IN_PROGRESS", "COMPLETED"})
#: `owner/app[/...]/requests/<id>`: what a task id may be; nothing else goes into a URL.
_TASK_PATH = re.compile(r"[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)*/requests/[A-Za-z0-9\-]{1,64}", re.ASCII)
#: Defaults for the image wait (route options `poll_interval` and `max_wait`, seconds).
_IMAGE_POLL = 1.0
_IMAGE_MAX_WAIT = 300.0
#: Video renders take minutes.
_VIDEO_POLL = 5.0
#: Cancel answers that only mean "too late to cancel" or "already gone".
_CANCEL_TOO_LATE = frozenset({400, 404, 409, 422})


@dataclass(frozen=True, slots=True)
class _Queued:
    """A submitted request: where its status, result and cancel live (all under the base)."""

    response_url: str
    status_url: str
    cancel_url: str
    task_path: str


class FalAdapter(Adapter):
    name = "fal"
    content_policy_codes = frozenset({"content_policy_violation"})

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.connection.api_key.reveal()}"}

    def _submit_headers(self) -> dict[str, str]:
        headers = self._auth()
        lifetime = self.connection.url_lifetime_seconds
        if lifetime:
            # fal keeps generated media on its CDN indefinitely unless asked: keep them only as
            # long as the catalog says they live (reapi retains nothing it does not need).
            headers["X-Fal-Object-Lifecycle-Preference"] = json.dumps(
                {"expiration_duration_seconds": lifetime}
            )
        return headers

    # -- errors ------------------------------------------------------------------------------
    def error_code(self, response: UpstreamResponse) -> str | None:
        body = self._json_object(response)
        detail = body.get("detail")
        if isinstance(detail, list):
            # A content block wins over other problems reported beside it.
            types = [d.get("type") for d in detail if isinstance(d, dict)]
            types = [t for t in types if isinstance(t, str)]
            blocked = [t for t in types if t in self.content_policy_codes]
            return (blocked or types or [None])[0]
        error_type = body.get("error_type")
        return error_type if isinstance(error_type, str) else None

    def request_id(self, response: UpstreamResponse) -> str | None:
        return response.header("x-fal-request-id") or response.header("x-request-id")

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        if response.status == 402:
            return QuotaExceededError(
                f"{self.provider} answered HTTP 402: its account is out of credit",
                provider=self.provider,
                status=402,
                request_id=self.request_id(response),
                provider_code=_safe_code(self.error_code(response)),
            )
        return super().error_for(response)

    # -- the queue ---------------------------------------------------------------------------
    def _relative(self, url: object) -> str | None:
        """The path of a URL under the configured base, or None for anything else."""
        base = self.connection.base_url.rstrip("/") + "/"
        if isinstance(url, str) and url.startswith(base):
            return url[len(base) :]
        return None

    def _submit(self, host: HostInput) -> Protocol[_Queued]:
        response = yield UpstreamRequest(
            "POST", self.connection.url(host.model), self._submit_headers(), json=host.input
        )
        assert response is not None
        body = self.check(response).json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError("the provider's answer is not an object", provider=self.provider)
        task_path = self._relative(body.get("response_url"))
        if task_path is None or not _TASK_PATH.fullmatch(task_path) or ".." in task_path:
            raise APIResponseError(
                "the provider returned no usable response_url", provider=self.provider
            )
        queued = _Queued(
            response_url=self.connection.url(task_path),
            status_url=self.connection.url(task_path + "/status"),
            cancel_url=self.connection.url(task_path + "/cancel"),
            task_path=task_path,
        )
        # Polling resumes from the task id alone, so the layout must be the documented one.
        if body.get("status_url", queued.status_url) != queued.status_url:
            yield from self._cancel(queued.cancel_url)
            raise APIResponseError(
                "the provider's status_url is not beside its response_url", provider=self.provider
            )
        return queued

    def _state(self, response: UpstreamResponse) -> QueueState:
        body = self.check(response).json(self.provider)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in _STATES:
            raise APIResponseError("the provider's queue status is unknown", provider=self.provider)
        state: QueueState = status
        return state

    def _cancel(self, url: str) -> Protocol[None]:
        response = yield UpstreamRequest("PUT", url, self._auth(), purpose="cancel")
        assert response is not None
        if response.status not in _CANCEL_TOO_LATE:
            self.check(response)

    def _file(self, item: object, default_type: str) -> GeneratedFile | None:
        if not isinstance(item, dict):
            return None
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return None
        kind = item.get("content_type")
        content_type = kind if isinstance(kind, str) and "/" in kind else default_type
        # fal's CDN serves media without the key; it must never be sent there.
        return self._keyless_file(content_type, url)

    # -- images ------------------------------------------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        mapper = input_map(FAL_INPUTS, call.route, self.name).image
        if mapper is None:
            raise InvalidRequestError("this route serves videos, not images", param="model")
        queued = yield from self._submit(mapper(call))
        interval = route_seconds(call.route, "poll_interval", _IMAGE_POLL)
        max_wait = route_seconds(call.route, "max_wait", _IMAGE_MAX_WAIT)
        waited = 0.0
        while True:
            status = yield UpstreamRequest("GET", queued.status_url, self._auth(), purpose="poll")
            if self._state(status) == "COMPLETED":
                break
            if waited >= max_wait:
                yield from self._cancel(queued.cancel_url)
                raise APITimeoutError(
                    f"{self.provider} did not finish the image within {max_wait:g} s",
                    provider=self.provider,
                )
            yield Sleep(interval)
            waited += interval
        result = yield UpstreamRequest("GET", queued.response_url, self._auth(), purpose="poll")
        return self._image_result(self.check(result), call)

    def _image_result(self, response: UpstreamResponse, call: ImageCall) -> ImageResult:
        body = response.json(self.provider)
        items = body.get("images") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise APIResponseError(
                "the provider's answer has no image list", provider=self.provider
            )
        # Models with fal's safety checker flag images instead of failing: a flagged image is a
        # block, not a result.
        flags = body.get("has_nsfw_concepts")
        flagged = [f is True for f in flags] if isinstance(flags, list) else []
        default_type = content_type_for(call.params.output_format)
        images = [
            file
            for index, item in enumerate(items)
            if not (index < len(flagged) and flagged[index])
            and (file := self._file(item, default_type)) is not None
        ]
        if not images and any(flagged):
            raise ContentPolicyError(
                f"{self.provider} blocked the images under its content policy",
                provider=self.provider,
                status=response.status,
                provider_code="content_policy_violation",
            )
        if not images:
            raise APIResponseError("the provider returned no image", provider=self.provider)
        first = items[0] if isinstance(items[0], dict) else {}
        width, height = first.get("width"), first.get("height")
        return ImageResult(
            images=tuple(images),
            output_format=call.params.output_format or images[0].content_type.split("/")[-1],
            size=f"{width}x{height}"
            if isinstance(width, int) and isinstance(height, int)
            else None,
        )

    # -- videos ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        mapper = input_map(FAL_INPUTS, call.route, self.name).video
        if mapper is None:
            raise InvalidRequestError("this route serves images, not videos", param="model")
        queued = yield from self._submit(mapper(call))
        return queued.task_path

    def _task_url(self, task_id: str, suffix: str = "") -> str:
        if not _TASK_PATH.fullmatch(task_id) or ".." in task_id:
            raise InvalidRequestError(
                "no such video: this id names no fal request", param="video_id", code="not_found"
            )
        return self.connection.url(task_id + suffix)

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        status_url = self._task_url(task_id, "/status")
        status = yield UpstreamRequest("GET", status_url, self._auth(), purpose="poll")
        state = self._state(status)
        if state == "IN_QUEUE":
            return TaskStatus(state="queued", poll_after=_VIDEO_POLL)
        if state == "IN_PROGRESS":
            return TaskStatus(state="in_progress", poll_after=_VIDEO_POLL)
        result = yield UpstreamRequest("GET", self._task_url(task_id), self._auth(), purpose="poll")
        assert result is not None
        if result.status >= 400:
            return self._failed(result)
        body = result.json(self.provider)
        video = self._file(body.get("video") if isinstance(body, dict) else None, "video/mp4")
        if video is None:
            return TaskStatus(state="failed", error_code="generation_failed")
        return TaskStatus(state="completed", progress=100, outputs=(video,))

    def _failed(self, result: UpstreamResponse) -> TaskStatus:
        """The model's own error, read from the result: a task outcome, unless it is about the
        account or the request id (those are raised, like any failed call)."""
        if result.status in (401, 402, 403, 404, 429):
            raise self.error_for(result)
        if self.error_code(result) in self.content_policy_codes:
            return TaskStatus(
                state="failed", error_code="content_policy_violation", content_blocked=True
            )
        return TaskStatus(state="failed", error_code="generation_failed")

    def cancel_video(self, route: Route, task_id: str) -> Protocol[None]:
        """fal cancels requests still in the queue; a running one cannot be stopped."""
        yield from self._cancel(self._task_url(task_id, "/cancel"))
