"""A simulator of Alibaba Cloud Model Studio (DashScope) for tests: Happy Horse on
`api/v1/services/aigc/video-generation/video-synthesis` and `api/v1/tasks/{task_id}`
(PROVIDERS.md §9).

It speaks DashScope's wire format field by field: `Authorization: Bearer`, the required
`X-DashScope-Async: enable` header, the `{model, input{prompt, media[]}, parameters{resolution,
ratio, duration, watermark, seed}}` body validated strictly (`720P`/`1080P` with a capital P; an
i2v model takes exactly one `first_frame` URL and no `ratio`), error bodies `{"code", "message",
"request_id"}`, and tasks that go PENDING → RUNNING → SUCCEEDED (or FAILED with `output.code`).
A task id the simulator does not know is `UNKNOWN`, as DashScope answers for expired ids. The
`video_url` points back at the simulator (`<origin>/files/<id>.mp4?Expires=...`) and needs no key.
Prompts containing "forbidden" are refused with `DataInspectionFailed`.

Fault switches (`sim.faults`) apply to the creating call and answer the DashScope way:
`ERROR_500` / `ERROR_503` (`InternalError` / `ModelUnavailable`), `RATE_LIMIT` (429
`Throttling.RateQuota` with Retry-After), `QUOTA_EXHAUSTED` (400 `Arrearage`), `CONTENT_POLICY`
(the task fails with `DataInspectionFailed`: the output was flagged) and `TASK_FAILS` (the task
fails with `InternalError.Algo`). Refuse, reset, hang, slow body and truncated JSON come from
`SimServer`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._faults import Fault
from ._media import sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import Outcome, ProviderSimulator, Refusal, flagged, json_object, task_outcome

__all__ = ["DashScopeSimulator"]

#: Model → takes a first frame (i2v) or not (t2v).
_MODELS = {
    "happyhorse-1.0-t2v": False,
    "happyhorse-1.0-i2v": True,
    "happyhorse-1.1-t2v": False,
    "happyhorse-1.1-i2v": True,
}
_RATIOS = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4"})
_PARAMETERS = frozenset({"resolution", "ratio", "duration", "watermark", "seed"})
_ROUTE = re.compile(
    r"/api/v1/(?:(?P<create>services/aigc/video-generation/video-synthesis)"
    r"|tasks/(?P<task>[\w\-]{1,64}))"
    r"|/files/(?P<file>[\w\-]+\.mp4)"
)


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Refusal:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return Refusal(json_answer(status, body, headers))


def _invalid(message: str) -> Refusal:
    return _error(400, "InvalidParameter", message)


@dataclass
class _Task:
    outcome: Outcome
    duration: int
    resolution: str
    ratio: str
    submitted: str
    polls: int = 0
    status: str = "PENDING"
    file: str | None = None


class DashScopeSimulator(ProviderSimulator):
    """One simulated Model Studio workspace. Thread-safe; state lives in memory."""

    #: The path the provider's base URL ends with.
    base_path = "/api/v1"
    _routes = _ROUTE
    #: Polls before a task ends: the first says PENDING, the rest RUNNING.
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 2) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        self._tasks: dict[str, _Task] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        if route["create"] and request.method == "POST":
            if request.headers.get("x-dashscope-async", "").lower() != "enable":
                raise _error(
                    403, "AccessDenied", "current user api does not support synchronous calls"
                )
            return self._create(_json_body(request.body))
        if route["task"] and request.method == "GET":
            return self._poll(route["task"], request.origin)
        raise _error(405, "MethodNotAllowed", "Method not allowed")

    def _unknown_path(self) -> Refusal:
        return _error(404, "NotFound", "Not found")

    def _no_such_file(self) -> Refusal:
        return _error(404, "NoSuchKey", "The specified key does not exist.")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["create"]:
            return "/api/v1/services/aigc/video-generation/video-synthesis"
        return "/api/v1/tasks/{id}"

    def _authenticate(self, request: SimRequest) -> None:
        if not self._has_key(request, "Bearer"):
            raise _error(401, "InvalidApiKey", "Invalid API-key provided.")

    def _take_fault(self) -> Fault:
        state = self.faults.take()
        fault = state.fault
        if fault is Fault.ERROR_500:
            raise _error(500, "InternalError", "An internal error has occured")
        if fault is Fault.ERROR_503:
            raise _error(503, "ModelUnavailable", "Model is unavailable, please try again later.")
        if fault is Fault.RATE_LIMIT:
            raise _error(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                {"retry-after": str(state.retry_after)},
            )
        if fault is Fault.QUOTA_EXHAUSTED:
            raise _error(
                400,
                "Arrearage",
                "Access denied, please make sure your account is in good standing.",
            )
        return fault

    # -- create ------------------------------------------------------------------------------
    def _create(self, request: dict[str, Any]) -> Answer:
        unknown = set(request) - {"model", "input", "parameters"}
        if unknown:
            raise _invalid(f"Unknown parameter: {sorted(unknown)[0]}")
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise _error(400, "BadRequest.EmptyModel", 'Required parameter "model" missing')
        if model not in _MODELS:
            raise _error(404, "ModelNotFound", "Model can not be found.")
        takes_frame = _MODELS[model]
        prompt = _check_input(request.get("input"), takes_frame)
        parameters = request.get("parameters", {})
        if not isinstance(parameters, dict) or set(parameters) - _PARAMETERS:
            raise _invalid("parameters contains an unknown field")
        resolution, ratio, duration = _check_parameters(parameters, takes_frame)
        if flagged(prompt):
            raise _error(
                400, "DataInspectionFailed", "Input data may contain inappropriate content."
            )
        outcome = task_outcome(self._take_fault())
        task_id = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%d %H:%M:%S.000")
        with self._lock:
            self._tasks[task_id] = _Task(outcome, duration, resolution, ratio, now)
        answer = {
            "output": {"task_status": "PENDING", "task_id": task_id},
            "request_id": str(uuid.uuid4()),
        }
        return json_answer(200, answer)

    # -- poll ----------------------------------------------------------------------------------
    def _poll(self, task_id: str, origin: str) -> Answer:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                unknown = {"task_id": task_id, "task_status": "UNKNOWN"}
                return json_answer(200, {"request_id": str(uuid.uuid4()), "output": unknown})
            self._advance(task)
            output: dict[str, Any] = {
                "task_id": task_id,
                "task_status": task.status,
                "submit_time": task.submitted,
                "scheduled_time": task.submitted,
            }
            body: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": output}
            if task.status == "FAILED":
                output["end_time"] = task.submitted
                output["code"], output["message"] = (
                    ("DataInspectionFailed", "Output data may contain inappropriate content.")
                    if task.outcome == "filtered"
                    else ("InternalError.Algo", "An internal error has occured during execution")
                )
            elif task.status == "SUCCEEDED":
                expires = int(time.time()) + 86400
                output["end_time"] = task.submitted
                output["video_url"] = f"{origin}/files/{task.file}?Expires={expires}&Signature=sim"
                body["usage"] = {
                    "duration": task.duration,
                    "input_video_duration": 0,
                    "output_video_duration": task.duration,
                    "video_count": 1,
                    "SR": int(task.resolution[:-1]),
                    "ratio": task.ratio,
                }
        return json_answer(200, body)

    def _advance(self, task: _Task) -> None:
        if task.status in ("SUCCEEDED", "FAILED"):
            return
        task.polls += 1
        if task.polls <= self.polls_before_done:
            task.status = "PENDING" if task.polls == 1 else "RUNNING"
        elif task.outcome == "ok":
            task.status = "SUCCEEDED"
            task.file = f"hh{next(self._ids):06d}.mp4"
            self._files[task.file] = sample_mp4()
        else:
            task.status = "FAILED"


def _check_input(fields: object, takes_frame: bool) -> str:
    if not isinstance(fields, dict) or set(fields) - {"prompt", "media"}:
        raise _error(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")
    prompt = fields.get("prompt", "")
    if not isinstance(prompt, str) or len(prompt) > 5000 or (not takes_frame and not prompt):
        raise _invalid("input.prompt is missing or too long")
    media = fields.get("media")
    if not takes_frame:
        if media is not None:
            raise _invalid("this model takes no media")
        return prompt
    if not isinstance(media, list) or len(media) != 1:
        raise _invalid("Image-to-video model must provide an image")
    item = media[0]
    if (
        not isinstance(item, dict)
        or item.get("type") != "first_frame"
        or set(item) != {"type", "url"}
    ):
        raise _invalid("media must be one first_frame")
    url = item["url"]
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "oss://")):
        raise _invalid("media url must be a public http(s) URL or an oss:// temporary URL")
    return prompt


def _check_parameters(parameters: dict[str, Any], takes_frame: bool) -> tuple[str, str, int]:
    resolution = parameters.get("resolution", "1080P")
    if resolution not in ("720P", "1080P"):
        raise _invalid("resolution must be 720P or 1080P")
    if "ratio" in parameters and (takes_frame or parameters["ratio"] not in _RATIOS):
        raise _invalid("ratio is not supported here")
    duration = parameters.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 3 <= duration <= 15:
        raise _invalid("duration must be an integer from 3 to 15")
    if not isinstance(parameters.get("watermark", True), bool):
        raise _invalid("watermark must be a boolean")
    seed = parameters.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2147483647:
        raise _invalid("seed must be from 0 to 2147483647")
    return resolution, parameters.get("ratio", "16:9"), duration


def _json_body(body: bytes) -> dict[str, Any]:
    return json_object(
        body,
        lambda: _invalid("The request body is not valid JSON"),
        lambda: _invalid("The request body must be a JSON object"),
    )
