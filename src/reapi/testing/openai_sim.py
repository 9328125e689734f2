"""A simulator of OpenAI's Images and Videos APIs (PROVIDERS.md §1 and §2), field by field.

Like the real API, its 400 messages quote the submitted value (and, for prompt problems, the
prompt), and Video objects carry the prompt: reapi must never pass upstream text on. Prompts
containing "forbidden" are blocked the way OpenAI blocks them (`moderation_blocked`).

Faults from `sim.faults` (or `SimServer.faults`, which hands these on): CONTENT_POLICY,
QUOTA_EXHAUSTED (429 `insufficient_quota`) and TASK_FAILS apply to creating calls, as do
ERROR_500, ERROR_503 and RATE_LIMIT when set on this switch directly; transport faults are
the server's. TASK_FAILS also fails a streamed image (`stream: true`) after it was accepted:
its partial images, then an `error` event.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

from ._faults import Fault, FaultSwitch
from ._media import png_bytes, sample_mp4
from ._messages import Answer, SimRequest, SimResponse, json_answer
from ._openai_errors import OpenAIError, status_fault_error
from ._openai_images import IMAGE_MODELS, check_edit, check_generation, image_answer, image_file
from ._openai_videos import VIDEO_MODELS, VideoJobs, check_video_request

__all__ = ["OpenAISimulator"]

Handler = Callable[["OpenAISimulator", SimRequest, re.Match[str]], Answer]
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    # method, path (after /v1), counter key, handler method name
    ("POST", re.compile(r"/images/generations"), "POST /images/generations", "_generate"),
    ("POST", re.compile(r"/images/edits"), "POST /images/edits", "_edit"),
    ("POST", re.compile(r"/videos"), "POST /videos", "_create_video"),
    ("GET", re.compile(r"/videos"), "GET /videos", "_list_videos"),
    ("GET", re.compile(r"/videos/(?P<id>[^/]+)"), "GET /videos/{id}", "_retrieve_video"),
    ("DELETE", re.compile(r"/videos/(?P<id>[^/]+)"), "DELETE /videos/{id}", "_delete_video"),
    ("GET", re.compile(r"/videos/(?P<id>[^/]+)/content"), "GET /videos/{id}/content", "_content"),
    ("GET", re.compile(r"/models/(?P<model>[^/]+)"), "GET /models/{model}", "_retrieve_model"),
    ("POST", re.compile(r"/videos/(?P<id>[^/]+)/remix"), "POST /videos/{id}/remix", "_remix"),
]
_DALLE_FILE = re.compile(r"/dalle/(?P<size>\d+x\d+)\.png")
_MODEL_PATH = re.compile(r"/v1/models/[^/]+")
#: `created` of every model object (a fixed time: the simulator keeps no model history).
_MODELS_CREATED = 1_745_193_600


def _masked(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 4) + key[-4:] if len(key) > 8 else "*" * len(key)


class OpenAISimulator:
    """One simulated OpenAI account. Thread-safe; keeps only what video jobs report."""

    #: The path OpenAI's base URL ends with (`run_simulators` adds it to provider URLs).
    base_path = "/v1"

    def __init__(
        self, api_key: str = "sk-sim", *, polls_to_complete: int = 2, poll_after_ms: int = 10
    ) -> None:
        self.api_key = api_key
        #: `openai-poll-after-ms` on video polls (OpenAI's SDK waits that long between polls).
        self.poll_after_ms = poll_after_ms
        #: App-level faults (content policy, failing tasks, quota); SimServer hands them on.
        self.faults = FaultSwitch()
        #: Requests served per "METHOD /path-template" (path after /v1), for assertions.
        self.requests: dict[str, int] = {}
        #: The last request's headers (lower-case names), e.g. to check idempotency keys.
        self.last_request_headers: dict[str, str] = {}
        self.videos = VideoJobs(polls_to_complete)
        self._lock = threading.Lock()

    @property
    def polls_to_complete(self) -> int:
        return self.videos.polls_to_complete

    @polls_to_complete.setter
    def polls_to_complete(self, polls: int) -> None:
        self.videos.polls_to_complete = polls

    # -- entry point -------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        request = SimRequest(method, path, query, headers, body, origin)
        with self._lock:
            self.last_request_headers = dict(headers)
        try:
            if method == "GET" and (match := _DALLE_FILE.fullmatch(path)):
                # dall-e result URLs are storage links: no key needed, like the real ones.
                return SimResponse(
                    200, {"content-type": "image/png"}, image_file("png", match["size"])
                )
            self._authenticate(headers)
            return self._route(request)
        except OpenAIError as error:
            return error.answer

    def answers_at_once(self, method: str, path: str) -> bool:
        """Reading a model does no generation (SimServer's hook): it answers without latency."""
        return method == "GET" and _MODEL_PATH.fullmatch(path) is not None

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != self.api_key:
            raise OpenAIError(
                401,
                f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _route(self, request: SimRequest) -> Answer:
        path = request.path.removeprefix("/v1")
        for method, pattern, key, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                with self._lock:
                    self.requests[key] = self.requests.get(key, 0) + 1
                handler: Handler = getattr(type(self), name)
                return handler(self, request, match)
        raise OpenAIError(404, f"Invalid URL ({request.method} {request.path})")

    # -- faults --------------------------------------------------------------------------------
    def _creating_call_fault(self) -> Fault:
        """One creating call's fault. Status faults set here are answered at once."""
        state = self.faults.take()
        error = status_fault_error(state)
        if error is not None:
            raise error
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise OpenAIError(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                code="insufficient_quota",
                kind="insufficient_quota",
            )
        return state.fault

    # -- models --------------------------------------------------------------------------------
    def _retrieve_model(self, request: SimRequest, match: re.Match[str]) -> Answer:
        """`GET /v1/models/{model}`: the Model object, or OpenAI's 404 `model_not_found`."""
        model = match["model"]
        if model not in IMAGE_MODELS | VIDEO_MODELS:
            raise OpenAIError(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
            )
        owner = "openai" if model.startswith("dall-e") else "system"
        return json_answer(
            200, {"id": model, "object": "model", "created": _MODELS_CREATED, "owned_by": owner}
        )

    # -- images --------------------------------------------------------------------------------
    def _generate(self, request: SimRequest, match: re.Match[str]) -> Answer:
        fault = self._creating_call_fault()
        image_request, stream = check_generation(request.body)
        _moderate(image_request.prompt, fault)
        fails = fault is Fault.TASK_FAILS
        return image_answer(image_request, request.origin, stream=stream, fails=fails)

    def _edit(self, request: SimRequest, match: re.Match[str]) -> Answer:
        fault = self._creating_call_fault()
        try:
            parts = request.form()
        except ValueError:
            raise OpenAIError.invalid(
                "body", "The request must be multipart/form-data with an 'image' file."
            ) from None
        image_request, stream = check_edit(parts)
        _moderate(image_request.prompt, fault)
        fails = fault is Fault.TASK_FAILS
        return image_answer(image_request, request.origin, stream=stream, fails=fails)

    # -- videos --------------------------------------------------------------------------------
    def _create_video(self, request: SimRequest, match: re.Match[str]) -> Answer:
        fault = self._creating_call_fault()
        if request.content_type == "multipart/form-data":
            try:
                video_request = check_video_request(None, request.form())
            except ValueError:
                raise OpenAIError.invalid("body", "Malformed multipart body.") from None
        else:
            video_request = check_video_request(_json_body(request), None)
        job = self.videos.create(video_request, _video_failure(video_request.prompt, fault))
        return json_answer(200, job.as_object())

    def _remix(self, request: SimRequest, match: re.Match[str]) -> Answer:
        fault = self._creating_call_fault()
        source = self.videos.get(match["id"])
        body = _json_body(request)
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str) or not prompt:
            raise OpenAIError(
                400,
                "Missing required parameter: 'prompt'.",
                code="missing_required_parameter",
                param="prompt",
            )
        if source.status != "completed":
            raise OpenAIError.invalid("video_id", f"Video '{source.id}' is not completed yet.")
        remix = replace(source.request, prompt=prompt)
        job = self.videos.create(remix, _video_failure(prompt, fault), remixed_from=source.id)
        return json_answer(200, job.as_object())

    def _retrieve_video(self, request: SimRequest, match: re.Match[str]) -> Answer:
        job = self.videos.poll(match["id"])
        return json_answer(200, job.as_object(), {"openai-poll-after-ms": str(self.poll_after_ms)})

    def _list_videos(self, request: SimRequest, match: re.Match[str]) -> Answer:
        return json_answer(200, self.videos.page(request.params()))

    def _delete_video(self, request: SimRequest, match: re.Match[str]) -> Answer:
        self.videos.delete(match["id"])
        return json_answer(200, {"id": match["id"], "object": "video.deleted", "deleted": True})

    def _content(self, request: SimRequest, match: re.Match[str]) -> Answer:
        job = self.videos.get(match["id"])
        variant = request.params().get("variant", "video")
        if variant not in ("video", "thumbnail", "spritesheet"):
            raise OpenAIError.invalid(
                "variant",
                f"Invalid value: '{variant}'. Supported values are: 'spritesheet', "
                "'thumbnail' and 'video'.",
            )
        if job.status != "completed":
            raise OpenAIError(404, f"Video '{job.id}' has no content: it is {job.status}.")
        if variant == "video":
            return SimResponse(200, {"content-type": "video/mp4"}, sample_mp4())
        width, height = (64, 36) if variant == "thumbnail" else (256, 36)
        return SimResponse(200, {"content-type": "image/png"}, png_bytes(width, height))


def _json_body(request: SimRequest) -> object:
    try:
        return request.json()
    except ValueError:
        raise OpenAIError(400, "We could not parse the JSON body of your request.") from None


def _moderate(prompt: str, fault: Fault) -> None:
    if "forbidden" in prompt.lower() or fault is Fault.CONTENT_POLICY:
        raise OpenAIError(  # quotes the prompt, as upstream moderation messages may
            400,
            f"Your request was rejected as a result of our safety system: '{prompt}'",
            code="moderation_blocked",
            kind="image_generation_user_error",
        )


def _video_failure(prompt: str, fault: Fault) -> str | None:
    if "forbidden" in prompt.lower() or fault is Fault.CONTENT_POLICY:
        return "moderation_blocked"
    return "video_generation_failed" if fault is Fault.TASK_FAILS else None
