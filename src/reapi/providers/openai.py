"""OpenAI Images (`/v1/images/generations`, `/v1/images/edits`) and Videos (`/v1/videos`).

Wire format: docs/providers/openai.md. Any OpenAI-compatible upstream (Azure OpenAI, Vercel AI
Gateway, another reapi gateway) can use this adapter with its own `base_url`.

On a route with `stream_idle_timeout`, a request for one image asks for a stream (`stream: true`
and the route's `partial_images`, 0-3): OpenAI then sends `<kind>.partial_image` events while the
image forms and `<kind>.completed` with the image and usage, `kind` being `image_generation` or
`image_edit`. The partial images only prove the upstream alive; the result is read from the
completed event into the same shape as an answer that is not streamed. An `error` event (data
`{"error": {...}}`) mid-stream is mapped by its code. How a stream carries several images is not
documented, so `n > 1` is not streamed.

A caller that streams itself (`ImageParams.partial_images` set, above 0) gets the stream asked for
with its own count, or the route's where that is more (the route's idle deadline counts on its
drafts; the caller is passed its own count only): the gateway reads the partial images off the
wire as they come (`AsyncEngine.drive` with a tap) and passes them on; this adapter still reads only
the result. A draft's event (its `event:` field ends with `.partial_image`) is let go unread,
as a tapped stream lets it go: only its size is bounded, by the event decoder; events of any
other name are read and checked (an `error` event, one whose data is not a JSON object).
"""

from __future__ import annotations

import time
from typing import Any

from .._exceptions import (
    APIResponseError,
    ContentPolicyError,
    InternalServerError,
    QuotaExceededError,
    RateLimitError,
    ReapiError,
)
from .._numbers import ascii_whole_number
from .._payload import File
from .._sse import is_event_stream, read_events
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
from ._util import b64decode, content_type_for, drop_none

__all__ = ["OpenAIAdapter"]

_VIDEO_STATES: dict[str, TaskState] = {
    "queued": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
    "failed": "failed",
}


class OpenAIAdapter(Adapter):
    name = "openai"
    content_policy_codes = frozenset({"moderation_blocked", "content_policy_violation"})
    quota_codes = frozenset({"insufficient_quota", "billing_hard_limit_reached"})

    def probe(self, route: Route) -> UpstreamRequest:
        """`GET /models/{model}` (OpenAI's "retrieve model"): the key and the model at once."""
        url = self.connection.url(f"models/{route.upstream_model}")
        return UpstreamRequest("GET", url, self._headers(), purpose="probe")

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.connection.api_key.reveal()}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def error_code(self, response: UpstreamResponse) -> str | None:
        error = self._json_object(response).get("error") or {}
        if not isinstance(error, dict):
            return None
        code = error.get("code") or error.get("type")
        return code if isinstance(code, str) else None

    # -- images ------------------------------------------------------------------------------
    def _image_fields(self, call: ImageCall) -> dict[str, Any]:
        params = call.params
        return drop_none(
            {
                "model": call.route.upstream_model,
                "n": params.n,
                "size": call.shape.size,
                "quality": params.quality,
                "background": params.background,
                "output_format": params.output_format,
                "output_compression": params.output_compression,
                "moderation": params.moderation,
                "input_fidelity": params.input_fidelity if call.edit else None,
                "user": call.payload.get("user"),
            }
        )

    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        fields = self._image_fields(call)
        fields["prompt"] = call.payload.get("prompt")
        idle = call.route.stream_idle_timeout if call.params.n == 1 else None
        partials = call.params.partial_images or 0  # set when the caller streams
        if idle is not None:
            # The route's drafts are what its idle deadline counts on (its silences between
            # events): a caller asking for fewer gets its own count passed on, no more.
            fields["stream"] = True
            fields["partial_images"] = max(
                partials, int(call.route.options.get("partial_images", 1))
            )
        elif partials and call.params.n == 1:
            fields["stream"] = True
            fields["partial_images"] = partials
        headers = self._headers(call.idempotency_key)
        if not call.edit:
            request = UpstreamRequest(
                "POST",
                self.connection.url("images/generations"),
                headers,
                json=fields,
                idle_timeout=idle,
            )
        else:
            images: list[File] = list(call.payload.get("images") or ())
            image_field = "image[]" if len(images) > 1 else "image"
            files = [(image_field, (f.filename, f.content, f.content_type)) for f in images]
            mask: File | None = call.payload.get("mask")
            if mask is not None:
                files.append(("mask", (mask.filename, mask.content, mask.content_type)))
            request = UpstreamRequest(
                "POST",
                self.connection.url("images/edits"),
                headers,
                data=tuple((k, _form_value(v)) for k, v in fields.items()),
                files=tuple(files),
                idle_timeout=idle,
            )
        response = yield request
        assert response is not None
        if is_event_stream(response.header("content-type")) and response.status < 400:
            return self._image_result(self._streamed_answer(response), call)
        return self._image_result(self.check(response).json(self.provider), call)

    def _streamed_answer(self, response: UpstreamResponse) -> Any:
        """The completed events, as the answer that is not streamed would have put them."""
        completed: list[dict[str, Any]] = []
        for event in read_events(response.content, self.provider):
            if event.event.endswith(".partial_image"):
                continue  # a draft: it proved the upstream alive; its JSON is not read
            data = event.json(self.provider)
            if not isinstance(data, dict):
                raise APIResponseError(
                    "the provider sent an event that is not an object", provider=self.provider
                )
            if event.event == "error" or data.get("error"):
                raise self._stream_error(data.get("error"), response)
            kind = data.get("type")
            if isinstance(kind, str) and kind.endswith(".completed"):
                completed.append(data)
        if not completed:
            raise APIResponseError(
                "the provider's stream ended before its image", provider=self.provider
            )
        last = completed[-1]
        # (written out: a comprehension and a merge cost a call and a copy on every answer)
        return {
            "background": last.get("background"),
            "output_format": last.get("output_format"),
            "quality": last.get("quality"),
            "size": last.get("size"),
            "data": [{"b64_json": event.get("b64_json")} for event in completed],
            "usage": last.get("usage"),
        }

    def _stream_error(self, error: object, response: UpstreamResponse) -> ReapiError:
        """An error sent as an event: the stream had begun (HTTP 200), so only its code says
        what went wrong; its message is dropped, as it may echo the prompt."""
        error = error if isinstance(error, dict) else {}
        code = error.get("code") or error.get("type")
        code = code if isinstance(code, str) else None
        common: dict[str, Any] = {
            "provider": self.provider,
            "status": response.status,
            "request_id": self.request_id(response),
            "provider_code": _safe_code(code),
        }
        where = f"{self.provider} ended its stream with an error"
        if code in self.content_policy_codes:
            return ContentPolicyError(f"{where}: blocked by its content policy", **common)
        if code in self.quota_codes:
            return QuotaExceededError(f"{where}: its account is out of quota", **common)
        if code == "rate_limit_exceeded":
            return RateLimitError(f"{where}: rate limited", **common)
        return InternalServerError(where, **common)

    def _image_result(self, body: Any, call: ImageCall) -> ImageResult:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise APIResponseError(
                "the provider's answer has no image list", provider=self.provider
            )
        output_format = body.get("output_format") or call.params.output_format
        content_type = content_type_for(output_format)
        lifetime = self.connection.url_lifetime_seconds
        images = []
        for item in body["data"]:
            if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
                encoded = item["b64_json"]
                data = b64decode(encoded, self.provider)
                images.append(GeneratedFile(content_type, data=data, b64=encoded))
            elif isinstance(item, dict) and isinstance(item.get("url"), str):
                url = item["url"]
                expires = int(time.time()) + lifetime if lifetime else None
                images.append(
                    GeneratedFile(
                        content_type,
                        url=url,
                        fetch=UpstreamRequest("GET", url, purpose="download", download=True),
                        url_expires_at=expires,
                    )
                )
        if not images:
            raise APIResponseError("the provider returned no image", provider=self.provider)
        usage = body.get("usage")
        return ImageResult(
            images=tuple(images),
            usage=usage if isinstance(usage, dict) else None,
            output_format=output_format,
            size=body.get("size"),
            quality=body.get("quality"),
            background=body.get("background"),
        )

    # -- videos ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        fields = drop_none(
            {
                "model": call.route.upstream_model,
                "prompt": call.payload.get("prompt"),
                "seconds": str(call.shape.seconds) if call.shape.seconds else None,
                "size": call.shape.size,
            }
        )
        reference = call.payload.get("input_reference")
        headers = self._headers(call.idempotency_key)
        url = self.connection.url("videos")
        if isinstance(reference, File):
            request = UpstreamRequest(
                "POST",
                url,
                headers,
                data=tuple((k, str(v)) for k, v in fields.items()),
                files=(
                    (
                        "input_reference",
                        (reference.filename, reference.content, reference.content_type),
                    ),
                ),
            )
        else:
            if isinstance(reference, str):
                fields["input_reference"] = {"image_url": reference}
            request = UpstreamRequest("POST", url, headers, json=fields)
        response = yield request
        assert response is not None
        body = self.check(response).json(self.provider)
        task_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise APIResponseError("the provider returned no video id", provider=self.provider)
        return task_id

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        url = self.connection.url(f"videos/{task_id}")
        response = yield UpstreamRequest("GET", url, self._headers(), purpose="poll")
        assert response is not None
        body = self.check(response).json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError(
                "the provider's video object is not an object", provider=self.provider
            )
        state = _VIDEO_STATES.get(str(body.get("status")))
        if state is None:
            raise APIResponseError("the provider's video status is unknown", provider=self.provider)
        poll_after_ms = ascii_whole_number(response.header("openai-poll-after-ms") or "")
        status = TaskStatus(
            state=state,
            progress=_progress(body.get("progress")),
            poll_after=poll_after_ms / 1000 if poll_after_ms is not None else None,
            seconds=ascii_whole_number(str(body.get("seconds", ""))),
            size=body.get("size") if isinstance(body.get("size"), str) else None,
        )
        if state == "failed":
            error = body.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            blocked = code in self.content_policy_codes
            return TaskStatus(
                state="failed",
                error_code="content_policy_violation" if blocked else "generation_failed",
                content_blocked=blocked,
            )
        if state != "completed":
            return status
        expires = body.get("expires_at") if isinstance(body.get("expires_at"), int) else None
        content = self.connection.url(f"videos/{task_id}/content")
        video = GeneratedFile(
            "video/mp4",
            url=content,
            fetch=UpstreamRequest(
                "GET", content, self._headers(), purpose="download", download=True
            ),
            url_expires_at=expires,
        )
        thumb_url = content + "?variant=thumbnail"
        thumbnail = GeneratedFile(
            "image/png",
            url=thumb_url,
            fetch=UpstreamRequest(
                "GET", thumb_url, self._headers(), purpose="download", download=True
            ),
            url_expires_at=expires,
        )
        return TaskStatus(
            state="completed",
            progress=100,
            outputs=(video,),
            thumbnail=thumbnail,
            seconds=status.seconds,
            size=status.size,
        )

    def cancel_video(self, route: Route, task_id: str) -> Protocol[None]:
        url = self.connection.url(f"videos/{task_id}")
        response = yield UpstreamRequest("DELETE", url, self._headers(), purpose="cancel")
        assert response is not None
        if response.status != 404:
            self.check(response)


def _form_value(value: object) -> str:
    """A multipart field as OpenAI reads it (booleans in JSON's spelling)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _progress(value: Any) -> int:
    """A percentage as the upstream wrote it (a number, or digits), else 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
        return int(value)
    return min(ascii_whole_number(str(value), max_digits=3) or 0, 100)
