"""A simulator of the Vidu API for tests: `ent/v2/{text2video,img2video,start-end2video,
reference2video}` and `ent/v2/tasks/{id}/creations` (PROVIDERS.md §7).

It speaks Vidu's wire format field by field: `Authorization: Token` (Bearer is refused), strict
request validation, tasks that go created → queueing → processing → success (or failed with an
`err_code`), and creations whose `url` and `cover_url` point back at the simulator
(`<origin>/files/<id>.mp4|.jpg`) and need no key. Vidu documents its error codes but not the
body's shape; the simulator answers `{"code": <status>, "reason": <code>, "message", "metadata"}`.
Prompts containing "forbidden" are refused with `TaskPromptPolicyViolation`.

Fault switches (`sim.faults`, a `FaultSwitch`) apply to the creating calls and answer the Vidu
way: `ERROR_500` / `ERROR_503` (`InternalServiceFailure`), `RATE_LIMIT` (429 `TooManyRequests`
with Retry-After), `QUOTA_EXHAUSTED` (400 `CreditInsufficient`), `CONTENT_POLICY` (the task
fails with `CreationPolicyViolation`) and `TASK_FAILS` (the task fails with
`InternalServiceFailure`). Refuse, reset, hang, slow body and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._faults import Fault
from ._jpeg import jpeg_bytes
from ._media import sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import Outcome, ProviderSimulator, Refusal, flagged, json_object, task_outcome

__all__ = ["ViduSimulator"]


@dataclass(frozen=True)
class _Model:
    seconds: range
    resolutions: tuple[str, ...]
    ratios: tuple[str, ...]
    audio: bool


_WIDE = ("16:9", "9:16", "1:1")
_MODELS = {
    "viduq3-pro": _Model(range(1, 17), ("540p", "720p", "1080p"), (*_WIDE, "3:4", "4:3"), True),
    "viduq3-turbo": _Model(range(1, 17), ("540p", "720p", "1080p"), (*_WIDE, "3:4", "4:3"), True),
    "viduq2": _Model(range(1, 11), ("540p", "720p", "1080p"), (*_WIDE, "3:4", "4:3"), False),
    "viduq1": _Model(range(5, 6), ("1080p",), _WIDE, False),
}
#: Images each endpoint takes (min, max), and whether it takes an aspect ratio.
_ENDPOINTS = {
    "text2video": (0, 0, True),
    "img2video": (1, 1, False),
    "start-end2video": (2, 2, False),
    "reference2video": (1, 7, True),
}
_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "images",
        "duration",
        "seed",
        "aspect_ratio",
        "resolution",
        "movement_amplitude",
        "style",
        "bgm",
        "audio",
        "off_peak",
        "watermark",
        "wm_position",
        "wm_url",
        "meta_data",
        "payload",
        "callback_url",
        "is_rec",
    }
)
_ROUTE = re.compile(
    r"/ent/v2/(?:(?P<create>text2video|img2video|start-end2video|reference2video)"
    r"|tasks/(?P<task>\d+)/creations)"
    r"|/files/(?P<file>[\w\-]+\.(?:mp4|jpg))"
)
_INLINE_LIMIT = 10_000_000


def _error(
    status: int, reason: str, message: str, headers: Mapping[str, str] | None = None
) -> Refusal:
    body = {"code": status, "reason": reason, "message": message, "metadata": {}}
    return Refusal(json_answer(status, body, headers))


def _invalid(field_name: str) -> Refusal:
    return _error(400, "FieldInvalid", f"invalid field: {field_name}")


@dataclass
class _Task:
    model: str
    outcome: Outcome
    polls: int = 0
    state: str = "created"
    creation_id: str | None = None
    credits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ViduSimulator(ProviderSimulator):
    """One simulated Vidu organisation. Thread-safe; state lives in memory."""

    _routes = _ROUTE
    #: Polls before a task finishes: the first says `queueing`, the rest `processing`.
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 2) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        self._tasks: dict[str, _Task] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        if route["create"] and request.method == "POST":
            return self._create(route["create"], _json_body(request.body))
        if route["task"] and request.method == "GET":
            return self._poll(route["task"], request.origin)
        raise _error(405, "BadRequest", "bad request")

    def _unknown_path(self) -> Refusal:
        return _error(404, "NotFound", "not found")

    def _no_such_file(self) -> Refusal:
        return _error(404, "CreationNotFound", "creation not found")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["create"]:
            return f"/ent/v2/{route['create']}"
        return "/ent/v2/tasks/{id}/creations"

    def _authenticate(self, request: SimRequest) -> None:
        if not self._has_key(request, "Token"):
            raise _error(401, "Unauthorized", "unauthorized")

    def _take_fault(self) -> Fault:
        state = self.faults.take()
        fault = state.fault
        if fault in (Fault.ERROR_500, Fault.ERROR_503):
            raise _error(500, "InternalServiceFailure", "internal service failure")
        if fault is Fault.RATE_LIMIT:
            raise _error(
                429,
                "TooManyRequests",
                "too many requests",
                {"retry-after": str(state.retry_after)},
            )
        if fault is Fault.QUOTA_EXHAUSTED:
            raise _error(400, "CreditInsufficient", "insufficient credits")
        return fault

    # -- create ------------------------------------------------------------------------------
    def _create(self, kind: str, request: dict[str, Any]) -> Answer:
        unknown = set(request) - _FIELDS
        if unknown:
            raise _error(400, "FieldUnwanted", f"unwanted field: {sorted(unknown)[0]}")
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise _error(400, "FieldLacking", "field is missing or empty: model")
        spec = _MODELS.get(model)
        if spec is None:
            raise _error(400, "ModelUnavailable", "model unavailable")
        least, most, takes_ratio = _ENDPOINTS[kind]
        images = request.get("images", [])
        if not isinstance(images, list) or not least <= len(images) <= most:
            if least and not images:
                raise _error(400, "FieldLacking", "field is missing or empty: images")
            raise _error(400, "FieldItemCountOutOfRange", "field item count out of range: images")
        for image in images:
            _check_image(image)
        prompt = request.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > 5000:
            raise _invalid("prompt")
        if kind == "text2video" and not prompt:
            raise _error(400, "FieldLacking", "field is missing or empty: prompt")
        duration = request.get("duration", 5)
        if isinstance(duration, bool) or duration not in spec.seconds:
            raise _invalid("duration")
        if "aspect_ratio" in request:
            if not takes_ratio:
                raise _error(400, "FieldUnwanted", "unwanted field: aspect_ratio")
            if request["aspect_ratio"] not in spec.ratios:
                raise _invalid("aspect_ratio")
        resolution = request.get("resolution", spec.resolutions[min(1, len(spec.resolutions) - 1)])
        if resolution not in spec.resolutions:
            raise _invalid("resolution")
        if "audio" in request and (not spec.audio or not isinstance(request["audio"], bool)):
            raise _invalid("audio")
        for flag in ("watermark", "bgm", "off_peak"):
            if flag in request and not isinstance(request[flag], bool):
                raise _invalid(flag)
        seed = request.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise _invalid("seed")
        if flagged(prompt):
            raise _error(400, "TaskPromptPolicyViolation", "prompt policy violation")
        outcome = task_outcome(self._take_fault())
        credits = {"540p": 14, "720p": 30, "1080p": 32}.get(resolution, 30) * duration
        with self._lock:
            task_id = str(809387572068364288 + next(self._ids))
            self._tasks[task_id] = _Task(model, outcome, credits=credits)
        answer = {
            "task_id": task_id,
            "type": kind,
            "state": "created",
            "model": model,
            "prompt": prompt,
            "images": images,
            "duration": duration,
            "seed": seed or 66,
            "aspect_ratio": request.get("aspect_ratio", "16:9") if takes_ratio else None,
            "resolution": resolution,
            "movement_amplitude": "auto",
            "credits": credits,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }
        return json_answer(200, {k: v for k, v in answer.items() if v is not None})

    # -- poll ----------------------------------------------------------------------------------
    def _poll(self, task_id: str, origin: str) -> Answer:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise _error(404, "TaskNotFound", "task not found")
            if task.state not in ("success", "failed"):
                task.polls += 1
                if task.polls <= self.polls_before_done:
                    task.state = "queueing" if task.polls == 1 else "processing"
                elif task.outcome == "ok":
                    task.state = "success"
                    task.creation_id = f"sim{next(self._ids):06d}"
                    self._files[f"{task.creation_id}.mp4"] = sample_mp4()
                    self._files[f"{task.creation_id}.jpg"] = jpeg_bytes(160, 90)
                else:
                    task.state = "failed"
            err_code = ""
            if task.state == "failed":
                err_code = (
                    "CreationPolicyViolation"
                    if task.outcome == "filtered"
                    else "InternalServiceFailure"
                )
            creations = []
            if task.state == "success":
                base = f"{origin}/files/{task.creation_id}"
                creations = [
                    {
                        "id": task.creation_id,
                        "url": f"{base}.mp4?sign=sim",
                        "cover_url": f"{base}.jpg?sign=sim",
                        "watermarked_url": f"{base}.mp4?sign=sim&wm=1",
                    }
                ]
            answer = {
                "id": task_id,
                "state": task.state,
                "err_code": err_code,
                "credits": task.credits if task.state == "success" else 0,
                "payload": "",
                "bgm": False,
                "off_peak": False,
                "creations": creations,
            }
        return json_answer(200, answer)


def _check_image(image: object) -> None:
    if not isinstance(image, str) or not image:
        raise _invalid("images")
    if image.startswith(("https://", "http://")):
        return
    header, _, data = image.partition(",")
    if not re.fullmatch(r"data:image/(png|jpeg|jpg|webp);base64", header):
        raise _error(400, "ImageFormatInvalid", "invalid image format")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _error(400, "ImageFormatInvalid", "invalid image format") from None
    if len(decoded) >= _INLINE_LIMIT:
        raise _error(400, "PageSizeOutOfRange", "page size out of range")
    if not decoded.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")):
        raise _error(400, "ImageFormatInvalid", "invalid image format")


def _json_body(body: bytes) -> dict[str, Any]:
    return json_object(body, lambda: _error(400, "BadRequest", "bad request"))
