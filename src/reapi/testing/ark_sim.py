"""A simulator of BytePlus ModelArk for tests: Seedream `images/generations` and Seedance
`contents/generations/tasks` (PROVIDERS.md §5 and §6).

It speaks Ark's wire format field by field: `Authorization: Bearer`, strict request validation
with Ark's `{"error": {"code", "message", "param", "type"}}` answers, `data[]` items with `url` or
`b64_json` (or a per-item `error` in a batch), and tasks that go queued → running → succeeded
(or failed). Result URLs point back at the simulator (`<origin>/files/<id>.<ext>?X-Tos-...`) and
need no key, like Ark's presigned object-storage URLs. Prompts containing "forbidden" are refused
with `InputTextSensitiveContentDetected`.

Fault switches (`sim.faults`, a `FaultSwitch`) apply to the creating calls and answer the Ark
way: `ERROR_500` / `ERROR_503` (`InternalServiceError` / `ServiceUnavailable`), `RATE_LIMIT`
(429 `RateLimitExceeded.EndpointRPMExceeded` with Retry-After), `QUOTA_EXHAUSTED` (403
`AccountOverdueError`), `CONTENT_POLICY` (an output filtered: 400
`OutputImageSensitiveContentDetected` for one image, every batch item an error item, or a task
that ends failed with `OutputVideoSensitiveContentDetected`) and `TASK_FAILS` (a task that ends
`failed`). Refuse, reset, hang, slow body and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._faults import Fault, FaultState
from ._jpeg import jpeg_bytes
from ._media import png_bytes, sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import Outcome, ProviderSimulator, Refusal, flagged, json_object, task_outcome

__all__ = ["ArkSimulator"]


@dataclass(frozen=True)
class _ImageModel:
    tiers: tuple[str, ...]
    min_pixels: int
    output_formats: tuple[str, ...]


_IMAGE_MODELS = {
    "seedream-5-0-lite-260128": _ImageModel(("2K", "3K", "4K"), 3_686_400, ("png", "jpeg")),
    "seedream-4-5-251128": _ImageModel(("2K", "4K"), 3_686_400, ("jpeg",)),
    "seedream-4-0-250828": _ImageModel(("1K", "2K", "4K"), 921_600, ("jpeg",)),
}
_TIER_EDGE = {"1K": 1024, "2K": 2048, "3K": 3072, "4K": 4096}
_MAX_PIXELS = 16_777_216
_IMAGE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "image",
        "size",
        "response_format",
        "watermark",
        "sequential_image_generation",
        "sequential_image_generation_options",
        "optimize_prompt_options",
        "output_format",
        "stream",
    }
)


@dataclass(frozen=True)
class _VideoModel:
    resolutions: tuple[str, ...]
    seconds: range
    seed: bool


_VIDEO_MODELS = {
    "dreamina-seedance-2-0-260128": _VideoModel(
        ("480p", "720p", "1080p", "4k"), range(4, 16), False
    ),
    "dreamina-seedance-2-0-fast-260128": _VideoModel(("480p", "720p"), range(4, 16), False),
    "seedance-1-5-pro-251215": _VideoModel(("480p", "720p", "1080p"), range(4, 13), True),
}
_RATIOS = frozenset({"21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"})
_VIDEO_FIELDS = frozenset(
    {
        "model",
        "content",
        "resolution",
        "ratio",
        "duration",
        "seed",
        "watermark",
        "generate_audio",
        "return_last_frame",
        "callback_url",
        "service_tier",
        "execution_expires_after",
        "priority",
        "safety_identifier",
    }
)
_ROLES = frozenset({"first_frame", "last_frame", "reference_image"})
_ROUTE = re.compile(
    r"/api/v3/(?:(?P<images>images/generations)"
    r"|contents/generations/tasks(?:/(?P<task>[\w\-]+))?)"
    r"|/files/(?P<file>[\w\-]+\.(?:png|jpeg|mp4))"
)
_PIXELS = re.compile(r"(\d+)x(\d+)")
_Spec = TypeVar("_Spec")


def _error(
    status: int,
    code: str,
    message: str,
    param: str = "",
    headers: Mapping[str, str] | None = None,
) -> Refusal:
    kinds = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    kind = kinds.get(status, "TooManyRequests" if status == 429 else "InternalServerError")
    body = {"error": {"code": code, "message": message, "param": param, "type": kind}}
    return Refusal(json_answer(status, body, headers))


def _invalid(message: str, param: str) -> Refusal:
    return _error(400, "InvalidParameter", message, param)


def _model(
    models: Mapping[str, _Spec], fields: frozenset[str], request: dict[str, Any]
) -> tuple[str, _Spec]:
    """The requested model and its spec; Ark checks the model first, then the fields."""
    model = request.get("model")
    spec = models.get(model) if isinstance(model, str) else None
    if spec is None:
        raise _error(
            404,
            "InvalidEndpointOrModel.NotFound",
            "The model or endpoint does not exist or you do not have access to it.",
            "model",
        )
    unknown = set(request) - fields
    if unknown:
        raise _invalid(f"The parameter `{sorted(unknown)[0]}` is not supported.", "body")
    return str(model), spec


def _image_reference(value: object, param: str) -> None:
    if not isinstance(value, str):
        raise _invalid(f"The parameter `{param}` specified in the request is not valid.", param)
    if value.startswith(("https://", "http://")):
        return
    header, _, data = value.partition(",")
    if not re.fullmatch(r"data:image/(png|jpeg|jpg|webp|bmp|tiff|gif);base64", header):
        raise _invalid(f"The parameter `{param}` must be an image URL or base64 data.", param)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"The parameter `{param}` holds invalid base64 data.", param) from None


@dataclass
class _Task:
    model: str
    outcome: Outcome
    polls_left: int
    body: dict[str, Any]
    created_at: int
    status: str = "queued"
    file_id: str | None = None
    updated_at: int = 0


class ArkSimulator(ProviderSimulator):
    """One simulated ModelArk account. Thread-safe; state lives in memory."""

    _routes = _ROUTE
    _at_once = re.compile(r"/api/v3/contents/generations/tasks")
    #: Polls that answer `running` before a task finishes.
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 1) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        self._tasks: dict[str, _Task] = {}

    # -- entry points ------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        method = request.method
        if route["images"] and method == "POST":
            return self._generate_images(_json_body(request.body), request.origin)
        if route["task"] is None and method == "POST":
            return self._create_task(_json_body(request.body))
        if route["task"] is None and method == "GET":
            return self._list_tasks(request.params())
        if route["task"] and method == "GET":
            return self._poll(route["task"], request.origin)
        if route["task"] and method == "DELETE":
            return self._delete(route["task"])
        raise _error(405, "MethodNotAllowed", "The method is not allowed.")

    def _unknown_path(self) -> Refusal:
        return _error(404, "NotFound", "The requested resource was not found.")

    def _no_such_file(self) -> Refusal:
        xml = b"<Error><Code>NoSuchKey</Code></Error>"
        return Refusal((404, {"content-type": "application/xml"}, xml))

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["images"]:
            return "/images/generations"
        return "/contents/generations/tasks" + ("/{id}" if route["task"] else "")

    # -- shared checks -----------------------------------------------------------------------
    def _authenticate(self, request: SimRequest) -> None:
        if not self._has_key(request, "Bearer"):
            raise _error(
                401,
                "AuthenticationError",
                "The API key in the request is missing or invalid.",
            )

    def _take_fault(self) -> Fault:
        """One creating call's fault; the status faults are answered here, Ark's way."""
        state: FaultState = self.faults.take()
        fault = state.fault
        if fault is Fault.ERROR_500:
            raise _error(500, "InternalServiceError", "The service encountered an error.")
        if fault is Fault.ERROR_503:
            raise _error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if fault is Fault.RATE_LIMIT:
            raise _error(
                429,
                "RateLimitExceeded.EndpointRPMExceeded",
                "The request has exceeded the RPM limit of the endpoint.",
                headers={"retry-after": str(state.retry_after)},
            )
        if fault is Fault.QUOTA_EXHAUSTED:
            raise _error(403, "AccountOverdueError", "The account has an overdue balance.")
        return fault

    @staticmethod
    def _check_prompt(prompt: object) -> str:
        if not isinstance(prompt, str) or not prompt:
            raise _error(400, "MissingParameter", "The parameter `prompt` is missing.", "prompt")
        if flagged(prompt):
            raise _error(
                400,
                "InputTextSensitiveContentDetected",
                "The request failed because the input text may contain sensitive information.",
                "prompt",
            )
        return prompt

    # -- Seedream ------------------------------------------------------------------------------
    def _generate_images(self, request: dict[str, Any], origin: str) -> Answer:
        model, spec = _model(_IMAGE_MODELS, _IMAGE_FIELDS, request)
        references = request.get("image", [])
        references = references if isinstance(references, list) else [references]
        if len(references) > 14:
            raise _invalid("At most 14 reference images are supported.", "image")
        for reference in references:
            _image_reference(reference, "image")
        width, height = self._check_size(spec, request.get("size"))
        output_format = request.get("output_format", "jpeg")
        if output_format not in spec.output_formats:
            raise _invalid("The parameter `output_format` is not valid.", "output_format")
        response_format = request.get("response_format", "url")
        if response_format not in ("url", "b64_json"):
            raise _invalid("The parameter `response_format` is not valid.", "response_format")
        if not isinstance(request.get("watermark", True), bool):
            raise _invalid("The parameter `watermark` is not valid.", "watermark")
        count = self._check_batch(request, len(references))
        self._check_prompt(request.get("prompt"))
        blocked = self._take_fault() is Fault.CONTENT_POLICY
        if blocked and count == 1 and request.get("sequential_image_generation") != "auto":
            raise _error(
                400,
                "OutputImageSensitiveContentDetected",
                "The generated image may contain sensitive information.",
            )
        items = []
        for _ in range(count):
            if blocked:
                items.append(
                    {
                        "error": {
                            "code": "OutputImageSensitiveContentDetected",
                            "message": "The generated image may contain sensitive information.",
                        }
                    }
                )
                continue
            content = _image(output_format, width, height)
            item: dict[str, Any] = {"size": f"{width}x{height}"}
            if response_format == "b64_json":
                item["b64_json"] = base64.b64encode(content).decode()
            else:
                item["url"] = self._store(
                    content, "png" if output_format == "png" else "jpeg", origin
                )
            items.append(item)
        made = sum(1 for item in items if "error" not in item)
        return json_answer(
            200,
            {
                "model": model,
                "created": int(time.time()),
                "data": items,
                "usage": {
                    "generated_images": made,
                    "output_tokens": made * 16384,
                    "total_tokens": made * 16384,
                },
            },
        )

    @staticmethod
    def _check_size(spec: _ImageModel, size: object) -> tuple[int, int]:
        if size is None:
            return 2048, 2048
        if isinstance(size, str) and size in spec.tiers:
            edge = _TIER_EDGE[size]
            return edge, edge
        match = _PIXELS.fullmatch(size) if isinstance(size, str) else None
        if match is None:
            raise _invalid("The parameter `size` is not valid.", "size")
        width, height = int(match[1]), int(match[2])
        pixels = width * height
        if not spec.min_pixels <= pixels <= _MAX_PIXELS or not 1 / 16 <= width / height <= 16:
            raise _invalid("The parameter `size` is out of the supported range.", "size")
        return width, height

    @staticmethod
    def _check_batch(request: dict[str, Any], references: int) -> int:
        mode = request.get("sequential_image_generation", "disabled")
        if mode not in ("disabled", "auto"):
            raise _invalid("The parameter `sequential_image_generation` is not valid.", "body")
        options = request.get("sequential_image_generation_options")
        if mode == "disabled":
            return 1
        max_images = options.get("max_images", 15) if isinstance(options, dict) else 15
        if not isinstance(max_images, int) or not 1 <= max_images <= 15:
            raise _invalid("max_images must be between 1 and 15.", "max_images")
        if references + max_images > 15:
            raise _invalid("Reference images plus generated images must be at most 15.", "image")
        return max_images

    # -- Seedance ------------------------------------------------------------------------------
    def _create_task(self, request: dict[str, Any]) -> Answer:
        model, spec = _model(_VIDEO_MODELS, _VIDEO_FIELDS, request)
        prompt = self._check_content(request.get("content"))
        if request.get("resolution", "720p") not in spec.resolutions:
            raise _invalid("The parameter `resolution` is not valid.", "resolution")
        if request.get("ratio", "adaptive") not in _RATIOS:
            raise _invalid("The parameter `ratio` is not valid.", "ratio")
        duration = request.get("duration", 5)
        if isinstance(duration, bool) or duration not in spec.seconds:
            raise _invalid("The parameter `duration` is not valid.", "duration")
        if "seed" in request and not spec.seed:
            raise _invalid("The parameter `seed` is not supported by this model.", "seed")
        if not isinstance(request.get("watermark", False), bool):
            raise _invalid("The parameter `watermark` is not valid.", "watermark")
        if prompt:
            self._check_prompt(prompt)
        outcome = task_outcome(self._take_fault())
        now = int(time.time())
        with self._lock:
            task_id = (
                f"cgt-{time.strftime('%Y%m%d%H%M%S', time.gmtime(now))}-sim{next(self._ids):04d}"
            )
            self._tasks[task_id] = _Task(
                model=model,
                outcome=outcome,
                polls_left=self.polls_before_done,
                body={
                    "resolution": request.get("resolution", "720p"),
                    "ratio": request.get("ratio", "adaptive"),
                    "duration": duration,
                },
                created_at=now,
                updated_at=now,
            )
        return json_answer(200, {"id": task_id})

    @staticmethod
    def _check_content(content: object) -> str:
        if not isinstance(content, list) or not content:
            raise _error(400, "MissingParameter", "The parameter `content` is missing.", "content")
        texts = []
        for item in content:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text" and isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif kind == "image_url" and isinstance(item.get("image_url"), dict):
                _image_reference(item["image_url"].get("url"), "content.image_url.url")
                if item.get("role", "first_frame") not in _ROLES:
                    raise _invalid("The parameter `content.role` is not valid.", "content.role")
            else:
                raise _invalid("The parameter `content` holds an unsupported item.", "content")
        if len(texts) > 1:
            raise _invalid("At most one text item is supported.", "content")
        return texts[0] if texts else ""

    def _list_tasks(self, params: Mapping[str, str]) -> Answer:
        """`GET /contents/generations/tasks?page_num=&page_size=`: the newest tasks first, each
        as its id, model, status and times (the simulator lists no content)."""
        pages = {}
        for name in ("page_num", "page_size"):
            value = params.get(name, "1")
            if not value.isdigit() or not 1 <= int(value) <= 500:
                raise _invalid(
                    f"The parameter `{name}` specified in the request is not valid.", name
                )
            pages[name] = int(value)
        with self._lock:
            # Latest created first (a dict keeps creation order; ties within a second too).
            newest = sorted(reversed(self._tasks.items()), key=lambda item: -item[1].created_at)
            start = (pages["page_num"] - 1) * pages["page_size"]
            page = newest[start : start + pages["page_size"]]
            items = [
                {
                    "id": task_id,
                    "model": task.model,
                    "status": task.status,
                    "created_at": task.created_at,
                    "updated_at": task.updated_at,
                }
                for task_id, task in page
            ]
            total = len(self._tasks)
        return json_answer(200, {"items": items, "total": total})

    def _poll(self, task_id: str, origin: str) -> Answer:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise _error(404, "ResourceNotFound", "The task does not exist.", "id")
            if task.status in ("queued", "running") and task.polls_left > 0:
                task.polls_left -= 1
                task.status = "running"
            elif task.status in ("queued", "running"):
                task.status = {"ok": "succeeded", "failed": "failed", "filtered": "failed"}[
                    task.outcome
                ]
                task.updated_at = int(time.time())
                if task.outcome == "ok":
                    task.file_id = f"sim{next(self._ids):06d}"
                    self._files[f"{task.file_id}.mp4"] = sample_mp4()
            answer: dict[str, Any] = {
                "id": task_id,
                "model": task.model,
                "status": task.status,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
                **task.body,
                "framespersecond": 24,
                "service_tier": "default",
                "execution_expires_after": 172800,
            }
            if task.status == "succeeded":
                answer["content"] = {"video_url": _signed(f"{origin}/files/{task.file_id}.mp4")}
                answer["usage"] = {"completion_tokens": 108900, "total_tokens": 108900}
            elif task.status == "failed":
                code, message = (
                    (
                        "OutputVideoSensitiveContentDetected",
                        "The output video may contain sensitive information.",
                    )
                    if task.outcome == "filtered"
                    else ("InternalServiceError", "The video generation failed.")
                )
                answer["error"] = {"code": code, "message": message}
        return json_answer(200, answer)

    def _delete(self, task_id: str) -> Answer:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise _error(404, "ResourceNotFound", "The task does not exist.", "id")
            if task.status == "running":
                raise _invalid("A running task cannot be cancelled or deleted.", "id")
            if task.status == "queued":
                task.status = "cancelled"
                task.updated_at = int(time.time())
            else:
                del self._tasks[task_id]
        return json_answer(200, {})

    # -- result files --------------------------------------------------------------------------
    def _store(self, content: bytes, ext: str, origin: str) -> str:
        with self._lock:
            name = f"sim{next(self._ids):06d}.{ext}"
            self._files[name] = content
        return _signed(f"{origin}/files/{name}")


def _image(output_format: str, width: int, height: int) -> bytes:
    """JPEG at the full size (cheap to make); PNG drawn small, long edge 64 px (zlib over 16
    megapixels per image would make batch tests slow). `size` in the answer is the full size."""
    if output_format != "png":
        return jpeg_bytes(width, height)
    scale = max(width, height) / 64
    return png_bytes(max(round(width / scale), 1), max(round(height / scale), 1))


def _signed(url: str) -> str:
    return url + "?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Expires=86400&X-Tos-Signature=sim"


def _json_body(body: bytes) -> dict[str, Any]:
    return json_object(
        body,
        lambda: _invalid("The request body is not valid JSON.", "body"),
        lambda: _invalid("The request body must be a JSON object.", "body"),
    )
