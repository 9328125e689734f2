"""A simulator of fal.ai's queue API (PROVIDERS.md §11) for tests, generic over model paths.

`POST /{model path}` queues a request and answers `{request_id, status, status_url,
response_url, cancel_url, queue_position}`; the URLs use only `owner/app` and point back at the
simulator. `GET .../requests/{id}/status` answers 202 `IN_QUEUE`, then 202 `IN_PROGRESS`, then
200 `COMPLETED`; `GET .../requests/{id}` answers the model's output or the model's error with its
own status; `PUT .../cancel` cancels a request still in the queue. Outputs are `images[].url` or
`video.url` at `<origin>/files/<id>.png|.mp4`, served without a key (fal's CDN needs none).

Auth is `Authorization: Key ...` (Bearer is refused with 401 `{"detail": "Unauthorized"}`). Any
model path is accepted; the models reapi's catalog routes to fal have their documented input
schemas checked field by field (unknown fields refused), and, as on fal, input problems surface
at the result endpoint as 422 `{"detail": [{loc, msg, type, input}]}`. Prompts containing
"forbidden" end as 422 `content_policy_violation`.

Fault switches (`sim.faults`) apply to submits: `ERROR_500` / `ERROR_503` (`X-Fal-Retryable`),
`RATE_LIMIT` (429 + Retry-After), `QUOTA_EXHAUSTED` (403 "Exhausted balance", as fal locks an
account), `CONTENT_POLICY` (the result is a 422 `content_policy_violation`, category
`model_moderated`) and `TASK_FAILS` (the result is a 500 from the model). Refuse, reset, hang,
slow body and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._faults import Fault
from ._media import png_bytes, sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import ProviderSimulator, Refusal, flagged, json_object
from ._schema import (
    Problem,
    Schema,
    boolean,
    image_size,
    integer,
    number,
    one_of,
    text,
    url,
    urls,
)

__all__ = ["FAL_SCHEMAS", "FalSimulator"]

_FORMATS = one_of("png", "jpeg", "webp")
_SEED = integer(0, 2**32 - 1)
_PRESETS = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)

# openai/gpt-image-2: sizes as presets or multiples of 16 within GPT Image 2's pixel budget.
_GPT_IMAGE = Schema(
    "images",
    {
        "prompt": text(32000),
        "image_size": image_size(("auto", *_PRESETS), 655_360, 8_294_400, 16),
        "quality": one_of("auto", "low", "medium", "high"),
        "num_images": integer(1, 4),
        "output_format": _FORMATS,
        "sync_mode": boolean,
    },
    count_field="num_images",
)
_GPT_IMAGE_EDIT = _GPT_IMAGE.with_fields(
    frozenset({"prompt", "image_urls"}), image_urls=urls(1, 16), mask_url=url
)

# fal-ai/nano-banana family (Gemini image models).
_NANO_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
_NANO = Schema(
    "images",
    {
        "prompt": text(50000),
        "num_images": integer(1, 4),
        "aspect_ratio": one_of(*_NANO_RATIOS),
        "output_format": _FORMATS,
        "seed": _SEED,
        "safety_tolerance": one_of("1", "2", "3", "4", "5", "6"),
        "limit_generations": boolean,
        "sync_mode": boolean,
    },
    count_field="num_images",
)
_NANO_PRO = _NANO.with_fields(resolution=one_of("1K", "2K", "4K"))
_NANO_2 = _NANO.with_fields(
    resolution=one_of("0.5K", "1K", "2K", "4K"),
    aspect_ratio=one_of(*_NANO_RATIOS, "4:1", "1:4", "8:1", "1:8"),
)


def _nano_edit(schema: Schema) -> Schema:
    ratios = schema.fields["aspect_ratio"]
    return schema.with_fields(
        frozenset({"prompt", "image_urls"}),
        image_urls=urls(1, 14),
        aspect_ratio=lambda v: v == "auto" or ratios(v),
    )


# fal-ai/bytedance/seedream/v5/lite: 2560x1440 to 3072x3072 pixels in total.
_SEEDREAM = Schema(
    "images",
    {
        "prompt": text(5000),
        "image_size": image_size((*_PRESETS, "auto_2K", "auto_3K"), 3_686_400, 9_437_184),
        "num_images": integer(1, 6),
        "max_images": integer(1, 6),
        "seed": _SEED,
        "enable_safety_checker": boolean,
        "sync_mode": boolean,
    },
    count_field="num_images",
)

# fal-ai/veo3.1
_VEO = Schema(
    "video",
    {
        "prompt": text(20000),
        "aspect_ratio": one_of("16:9", "9:16"),
        "duration": one_of("4s", "6s", "8s"),
        "negative_prompt": text(),
        "resolution": one_of("720p", "1080p", "4k"),
        "generate_audio": boolean,
        "seed": _SEED,
        "auto_fix": boolean,
        "safety_tolerance": one_of("1", "2", "3", "4", "5", "6"),
    },
)
_VEO_I2V = _VEO.with_fields(
    frozenset({"prompt", "image_url"}),
    image_url=url,
    aspect_ratio=one_of("auto", "16:9", "9:16"),
)

# bytedance/seedance-2.0
_SEEDANCE = Schema(
    "video",
    {
        "prompt": text(20000),
        "resolution": one_of("480p", "720p"),
        "duration": one_of("auto", *(str(s) for s in range(4, 16))),
        "aspect_ratio": one_of("auto", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"),
        "generate_audio": boolean,
        "seed": integer(-1, 2**31 - 1),
    },
)
_SEEDANCE_I2V = _SEEDANCE.with_fields(
    frozenset({"prompt", "image_url"}), image_url=url, end_image_url=url
)

# fal-ai/vidu/q3 (image-to-video takes its ratio from the image)
_VIDU = Schema(
    "video",
    {
        "prompt": text(2000),
        "duration": integer(1, 16),
        "seed": integer(0, 2**31 - 1),
        "aspect_ratio": one_of("16:9", "9:16", "4:3", "3:4", "1:1"),
        "resolution": one_of("360p", "540p", "720p", "1080p"),
        "audio": boolean,
    },
)
_VIDU_I2V = _VIDU.without("aspect_ratio").with_fields(
    frozenset({"prompt", "image_url"}), image_url=url
)

# alibaba/happy-horse
_HAPPY_HORSE = Schema(
    "video",
    {
        "prompt": text(2500),
        "aspect_ratio": one_of("16:9", "9:16", "1:1", "4:3", "3:4"),
        "resolution": one_of("720p", "1080p"),
        "duration": integer(3, 15),
        "seed": integer(0, 2**31 - 1),
        "enable_safety_checker": boolean,
    },
)
_HAPPY_HORSE_I2V = _HAPPY_HORSE.without("aspect_ratio").with_fields(
    frozenset({"prompt", "image_url"}), image_url=url
)

# fal-ai/topaz/upscale/video
_TOPAZ_MODELS = (
    "Proteus",
    "Artemis HQ",
    "Artemis MQ",
    "Artemis LQ",
    "Nyx",
    "Nyx Fast",
    "Nyx XL",
    "Nyx HF",
    "Gaia HQ",
    "Gaia CG",
)
_TOPAZ = Schema(
    "video",
    {
        "video_url": url,
        "upscale_factor": number(1, 4),
        "model": one_of(*_TOPAZ_MODELS),
        "target_fps": integer(15, 120),
    },
    required=frozenset({"video_url"}),
)

#: Model paths whose inputs are checked; any other path is accepted as a generic model.
FAL_SCHEMAS: dict[str, Schema] = {
    "openai/gpt-image-2": _GPT_IMAGE,
    "openai/gpt-image-2/edit": _GPT_IMAGE_EDIT,
    "fal-ai/nano-banana": _NANO,
    "fal-ai/nano-banana/edit": _nano_edit(_NANO),
    "fal-ai/nano-banana-pro": _NANO_PRO,
    "fal-ai/nano-banana-pro/edit": _nano_edit(_NANO_PRO),
    "fal-ai/nano-banana-2": _NANO_2,
    "fal-ai/nano-banana-2/edit": _nano_edit(_NANO_2),
    "fal-ai/bytedance/seedream/v5/lite/text-to-image": _SEEDREAM,
    "fal-ai/bytedance/seedream/v5/lite/edit": _SEEDREAM.with_fields(
        frozenset({"prompt", "image_urls"}), image_urls=urls(1, 10)
    ),
    "fal-ai/veo3.1": _VEO,
    "fal-ai/veo3.1/image-to-video": _VEO_I2V,
    "bytedance/seedance-2.0/text-to-video": _SEEDANCE,
    "bytedance/seedance-2.0/image-to-video": _SEEDANCE_I2V,
    "fal-ai/vidu/q3/text-to-video": _VIDU,
    "fal-ai/vidu/q3/image-to-video": _VIDU_I2V,
    "alibaba/happy-horse/text-to-video": _HAPPY_HORSE,
    "alibaba/happy-horse/image-to-video": _HAPPY_HORSE_I2V,
    "fal-ai/topaz/upscale/video": _TOPAZ,
}

_ROUTE = re.compile(
    r"/files/(?P<file>[\w\-]+\.(?:png|mp4))"
    r"|/(?P<app>[\w.\-]+/[\w.\-]+)/requests/(?P<id>[a-f0-9\-]{36})(?P<tail>/status|/cancel)?"
    r"|/(?P<model>[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)+)",
    re.ASCII,
)

Outcome = Literal["ok", "filtered", "failed", "invalid", "blocked", "cancelled"]


def _detail(status: int, detail: object, headers: Mapping[str, str] | None = None) -> Refusal:
    return Refusal(json_answer(status, {"detail": detail}, headers))


@dataclass
class _Request:
    model: str
    app: str
    outcome: Outcome
    input: dict[str, Any] = field(repr=False)
    problem: Problem | None = None
    polls: int = 0
    output: dict[str, Any] | None = None


class FalSimulator(ProviderSimulator):
    """One simulated fal account. Thread-safe; state lives in memory."""

    _routes = _ROUTE
    #: Status polls answered 202 before a request completes (first IN_QUEUE, then IN_PROGRESS).
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 2) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        #: Field names (never values) of the last input submitted per model path.
        self.fields: dict[str, list[str]] = {}
        #: The `video_url` of each submit as the model reads it: a data URI's bytes, or the
        #: outside URL fal would fetch.
        self.videos: list[bytes | str] = []
        self._queue: dict[str, _Request] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        method, origin = request.method, request.origin
        if route["id"]:
            return self._request(method, route["app"], route["id"], route["tail"], origin)
        if method == "POST" and ".." not in route["model"]:
            return self._submit(route["model"], request.body, origin)
        raise _detail(405, "Method Not Allowed")

    def _unknown_path(self) -> Refusal:
        return _detail(404, "Not Found")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["id"]:
            return f"/{{app}}/requests/{{id}}{route['tail'] or ''}"
        return f"/{route['model']}"

    def _authenticate(self, request: SimRequest) -> None:
        if not self._has_key(request, "Key"):
            raise _detail(401, "Unauthorized")

    def _take_fault(self) -> Fault:
        state = self.faults.take()
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            raise _detail(status, "Internal Server Error", {"x-fal-retryable": "true"})
        if state.fault is Fault.RATE_LIMIT:
            raise _detail(429, "Too Many Requests", {"retry-after": str(state.retry_after)})
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise _detail(
                403,
                "User is locked. Reason: Exhausted balance. Top up your balance at "
                "fal.ai/dashboard/billing.",
            )
        return state.fault

    # -- submit ------------------------------------------------------------------------------
    def _submit(self, model: str, body: bytes, origin: str) -> Answer:
        given = json_object(
            body or b"{}",
            lambda: _detail(422, [_error(["body"], "Invalid JSON", "json_invalid")]),
            lambda: _detail(422, [_error(["body"], "Input should be an object", "dict_type")]),
        )
        fault = self._take_fault()
        schema = FAL_SCHEMAS.get(model)
        problem = schema.problem(given) if schema else None
        prompt = given.get("prompt")
        outcome: Outcome = (
            "invalid"
            if problem
            else "blocked"
            if flagged(prompt)
            else "filtered"
            if fault is Fault.CONTENT_POLICY
            else "failed"
            if fault is Fault.TASK_FAILS
            else "ok"
        )
        app = "/".join(model.split("/")[:2])
        request_id = str(uuid.uuid4())
        with self._lock:
            self.fields[model] = sorted(given)
            if isinstance(given.get("video_url"), str):
                self.videos.append(_read_file_url(given["video_url"]))
            self._queue[request_id] = _Request(model, app, outcome, given, problem)
            position = sum(1 for r in self._queue.values() if r.output is None) - 1
        response_url = f"{origin}/{app}/requests/{request_id}"
        return json_answer(
            200,
            {
                "request_id": request_id,
                "gateway_request_id": request_id,
                "status": "IN_QUEUE",
                "status_url": response_url + "/status",
                "response_url": response_url,
                "cancel_url": response_url + "/cancel",
                "queue_position": position,
            },
        )

    # -- status, result, cancel ------------------------------------------------------------
    def _request(
        self, method: str, app: str, request_id: str, tail: str | None, origin: str
    ) -> Answer:
        with self._lock:
            request = self._queue.get(request_id)
            if request is None or request.app != app:
                raise _detail(404, "Request not found")
            if tail == "/status" and method == "GET":
                return self._status(request, origin)
            if tail == "/cancel" and method == "PUT":
                return self._cancel(request)
            if tail is None and method == "GET":
                return self._result(request)
        raise _detail(405, "Method Not Allowed")

    def _done(self, request: _Request) -> bool:
        return request.output is not None

    def _status(self, request: _Request, origin: str) -> Answer:
        if not self._done(request):
            request.polls += 1
            if request.polls <= self.polls_before_done:
                status = "IN_QUEUE" if request.polls == 1 else "IN_PROGRESS"
                return json_answer(202, {"status": status, "queue_position": 0, "logs": None})
            request.output = self._finish(request, origin)
        return json_answer(200, {"status": "COMPLETED", "logs": None, "metrics": {}})

    def _cancel(self, request: _Request) -> Answer:
        if request.polls == 0 and request.output is None:
            request.outcome = "cancelled"
            request.output = {}
            return json_answer(202, {"status": "CANCELLATION_REQUESTED"})
        return json_answer(400, {"status": "ALREADY_COMPLETED"})

    def _result(self, request: _Request) -> Answer:
        if not self._done(request):
            raise _detail(400, "Request is still in progress")
        if request.outcome == "cancelled":
            raise _detail(400, "Request was cancelled")
        if request.outcome == "invalid":
            problem = request.problem
            assert problem is not None
            kinds = {"missing": "missing", "unknown": "extra_forbidden", "invalid": "value_error"}
            given = request.input.get(problem.field)
            error = _error(["body", problem.field], "Invalid input", kinds[problem.kind], given)
            raise _detail(422, [error])
        if request.outcome in ("blocked", "filtered"):
            error = _error(
                ["body", "prompt"],
                "The content was flagged by a content checker.",
                "content_policy_violation",
                request.input.get("prompt"),
            )
            error["url"] = "https://docs.fal.ai/errors#content_policy_violation"
            error["categories"] = [
                "violence" if request.outcome == "blocked" else "model_moderated"
            ]
            raise _detail(422, [error])
        if request.outcome == "failed":
            error = _error([], "The model failed to generate an output.", "internal_server_error")
            raise _detail(500, [error], {"x-fal-retryable": "false"})
        return json_answer(200, request.output or {})

    def _finish(self, request: _Request, origin: str) -> dict[str, Any]:
        """Make the outputs (served by this simulator) once the request completes."""
        if request.outcome != "ok":
            return {}
        schema = FAL_SCHEMAS.get(request.model)
        kind = schema.output if schema else ("video" if "video" in request.model else "images")
        name = uuid.uuid4().hex[:16]
        if kind == "video":
            content = sample_mp4()
            self._files[f"{name}.mp4"] = content
            return {
                "video": {
                    "url": f"{origin}/files/{name}.mp4",
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(content),
                },
                "seed": 42,
            }
        count_field = schema.count_field if schema else "num_images"
        count = request.input.get(count_field or "", 1)
        size = request.input.get("image_size")
        width, height = (size["width"], size["height"]) if isinstance(size, dict) else (1024, 1024)
        images = []
        for index in range(count if isinstance(count, int) else 1):
            self._files[f"{name}-{index}.png"] = png_bytes(16, 16)
            images.append(
                {
                    "url": f"{origin}/files/{name}-{index}.png",
                    "content_type": "image/png",
                    "file_name": f"output-{index}.png",
                    "width": width,
                    "height": height,
                }
            )
        output: dict[str, Any] = {"images": images, "seed": 42}
        if schema is not None and "enable_safety_checker" in schema.fields:
            output["has_nsfw_concepts"] = [False] * len(images)
        return output


def _read_file_url(value: str) -> bytes | str:
    """A data URI's bytes (fal takes one wherever it takes a file URL), else the URL itself."""
    header, _, data = value.partition(",")
    if value.startswith("data:") and header.endswith(";base64"):
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            return value
    return value


def _error(loc: list[str], msg: str, kind: str, given: object = None) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind}
    if given is not None:
        error["input"] = given  # fal echoes the input: reapi must keep only the type
    return error
