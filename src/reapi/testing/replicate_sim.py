"""A simulator of Replicate's predictions API (PROVIDERS.md §11) for tests, generic over models.

`POST /v1/models/{owner}/{name}/predictions` with `{"input": {...}}` creates a prediction (201);
`POST /v1/files` (multipart, the bytes as `content`) stores an input file whose `urls.get`
(`<origin>/v1/files/<id>`, read with the token) a model input takes; `sim.videos` lists what
each enhancement read; `DELETE /v1/files/{id}` deletes one (204, 404 when there is none) and
`sim.deleted_files` lists the ids deleted (`sim.failed_deletes = N`: the next N answer 503);
`GET /v1/predictions/{id}` moves it `starting` → `processing` → `succeeded` (or `failed` with an
`error` text carrying a code); `POST /v1/predictions/{id}/cancel` cancels it. With
`Prefer: wait[=N]` the create answer holds the finished prediction (as Replicate does when the
model finishes within the wait), unless `sim.wait_finishes` is False. `output` is a URL string or
a list of them at `<origin>/files/<id>.png|.mp4`, served without a key.

Auth is `Authorization: Bearer ...` (401 `{"title": "Unauthenticated", "detail", "status"}`).
Any official model path is accepted; the models reapi's catalog routes to Replicate have their
input schemas checked at create (422 with `invalid_fields`, unknown fields refused). Prompts
containing "forbidden" end `failed` with "flagged as sensitive (E005)".

Fault switches (`sim.faults`) apply to creates: `ERROR_500` / `ERROR_503`, `RATE_LIMIT`
(429 "Request was throttled" + Retry-After), `QUOTA_EXHAUSTED` (402 "Insufficient credit"),
`CONTENT_POLICY` (the prediction fails with E005) and `TASK_FAILS` (it fails with E1000).
Refuse, reset, hang, slow body and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._faults import Fault
from ._media import png_bytes, sample_mp4
from ._messages import Answer, SimRequest, json_answer, parse_multipart
from ._provider_sim import Outcome, ProviderSimulator, Refusal, json_object, task_outcome
from ._schema import Schema, boolean, integer, one_of, text, url, urls

__all__ = ["REPLICATE_SCHEMAS", "ReplicateSimulator"]

_ASPECTS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9")
#: Model → input schema; the output is a URL string ("video", "image") or a list ("images").
REPLICATE_SCHEMAS: dict[str, Schema] = {
    "google/veo-3.1": Schema(
        "video",
        {
            "prompt": text(),
            "aspect_ratio": one_of("16:9", "9:16"),
            "duration": one_of(4, 6, 8),
            "image": url,
            "last_frame": url,
            "reference_images": urls(1, 3),
            "negative_prompt": text(),
            "resolution": one_of("720p", "1080p"),
            "generate_audio": boolean,
            "seed": integer(0, 2**32 - 1),
        },
    ),
    "bytedance/seedream-5-lite": Schema(
        "images",
        {
            "prompt": text(),
            "image_input": urls(1, 14),
            "size": one_of("2K", "3K"),
            "aspect_ratio": one_of("match_input_image", *_ASPECTS),
            "sequential_image_generation": one_of("disabled", "auto"),
            "max_images": integer(1, 15),
            "output_format": one_of("png", "jpeg"),
        },
        count_field="max_images",
    ),
    "xai/grok-imagine-image": Schema(
        "images",
        {
            "prompt": text(),
            "image": url,
            "n": integer(1, 10),
            "aspect_ratio": one_of(
                "1:1",
                "3:4",
                "4:3",
                "9:16",
                "16:9",
                "2:3",
                "3:2",
                "9:19.5",
                "19.5:9",
                "9:20",
                "20:9",
                "1:2",
                "2:1",
            ),
        },
        count_field="n",
    ),
    "topazlabs/video-upscale": Schema(
        "video",
        {
            "video": url,
            "target_resolution": one_of("720p", "1080p", "4k"),
            "target_fps": integer(15, 120),
        },
        required=frozenset({"video"}),
    ),
}

_ROUTE = re.compile(
    r"/files/(?P<file>[\w\-]+\.(?:png|mp4))"
    r"|/v1/models/(?P<model>[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*)/predictions"
    r"|/v1/predictions/(?P<id>[a-z0-9]+)(?P<cancel>/cancel)?"
    r"|/v1/(?P<account>account)"
    r"|/v1/(?P<uploads>files)(?:/(?P<upload>[a-z0-9]{1,64}))?",
    re.ASCII,
)
_TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_ERRORS = {
    "filtered": "The input or output was flagged as sensitive. Please try again with different "
    "inputs. (E005)",
    "failed": "Prediction failed for an unknown reason. (E1000)",
}


def _problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **more: Any
) -> Refusal:
    body = {"title": title, "detail": detail, "status": status, **more}
    return Refusal(json_answer(status, body, headers))


def _no_input() -> Refusal:
    return _problem(422, "Input validation failed", "- input: required")


@dataclass
class _Prediction:
    id: str
    model: str
    outcome: Outcome
    input: dict[str, Any] = field(repr=False)
    status: str = "starting"
    polls: int = 0
    output: Any = None
    error: str | None = None
    created_at: str = ""
    completed_at: str | None = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class ReplicateSimulator(ProviderSimulator):
    """One simulated Replicate account. Thread-safe; state lives in memory."""

    _routes = _ROUTE
    _at_once = re.compile(r"/v1/account")
    #: Polls before a prediction ends: the first says `starting`, the rest `processing`.
    polls_before_done: int

    def __init__(self, api_key: str = "r8_sim", *, polls_before_done: int = 2) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        #: Whether `Prefer: wait` holds the create answer until the prediction has ended.
        self.wait_finishes = True
        #: Field names (never values) of the last input per model.
        self.fields: dict[str, list[str]] = {}
        #: Files uploaded with `POST /v1/files`, by id.
        self.uploads: dict[str, bytes] = {}
        #: The video each enhancement prediction read: bytes (an uploaded file, a data URL) or
        #: the outside URL it would have fetched.
        self.videos: list[bytes | str] = []
        #: Ids of the files deleted with `DELETE /v1/files/{id}`, in order.
        self.deleted_files: list[str] = []
        #: Deletes still to answer 503 (a Files API having trouble).
        self.failed_deletes = 0
        self._predictions: dict[str, _Prediction] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        method, origin = request.method, request.origin
        if route["model"] and method == "POST":
            wait = request.headers.get("prefer", "").startswith("wait")
            return self._create(route["model"], request.body, origin, wait=wait)
        if route["id"] and route["cancel"] and method == "POST":
            return self._cancel(route["id"], origin)
        if route["id"] and not route["cancel"] and method == "GET":
            return self._get(route["id"], origin)
        if route["uploads"] and not route["upload"] and method == "POST":
            return self._create_file(request)
        if route["upload"] and method == "GET":
            return self._read_file(route["upload"])
        if route["upload"] and method == "DELETE":
            return self._delete_file(route["upload"])
        if route["account"] and method == "GET":
            # `GET /v1/account`: who the token belongs to.
            account = {"type": "organization", "username": "sim", "name": "Simulated account"}
            return json_answer(200, {**account, "github_url": None})
        raise _problem(405, "Method not allowed", "Method not allowed.")

    def _unknown_path(self) -> Refusal:
        return _problem(404, "Not found", "The requested resource could not be found.")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["model"]:
            return f"/v1/models/{route['model']}/predictions"
        if route["account"]:
            return "/v1/account"
        if route["uploads"]:
            return "/v1/files/{id}" if route["upload"] else "/v1/files"
        return f"/v1/predictions/{{id}}{route['cancel'] or ''}"

    def _authenticate(self, request: SimRequest) -> None:
        if not self._has_key(request, "Bearer"):
            raise _problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    def _take_fault(self) -> Fault:
        state = self.faults.take()
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            raise _problem(status, "Internal server error", "Internal server error")
        if state.fault is Fault.RATE_LIMIT:
            raise _problem(
                429,
                "Request was throttled",
                f"Request was throttled. Your rate limit resets in ~{state.retry_after}s.",
                {"retry-after": str(state.retry_after)},
            )
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise _problem(
                402,
                "Insufficient credit",
                "You have insufficient credit to run this model. Go to "
                "https://replicate.com/account/billing#billing to purchase credit.",
            )
        return state.fault

    # -- files (the Files API: inputs uploaded for a model to read) ------------------------------
    def _create_file(self, request: SimRequest) -> Answer:
        """`POST /v1/files`, multipart with the bytes as `content` (and optional `metadata`)."""
        try:
            parts = parse_multipart(request.headers.get("content-type", ""), request.body)
        except ValueError:
            raise _problem(400, "Bad request", "Expected a multipart/form-data body") from None
        content = [p for p in parts if p.name == "content"]
        if len(content) != 1 or set(p.name for p in parts) - {"content", "metadata"}:
            raise _problem(400, "Bad request", "- content: required")
        part = content[0]
        file_id = secrets.token_hex(12)
        md5 = hashlib.md5(part.data, usedforsecurity=False).hexdigest()
        with self._lock:
            self.uploads[file_id] = part.data
        created = _now()
        url = f"{request.origin}/v1/files/{file_id}"
        return json_answer(
            201,
            {
                "id": file_id,
                "name": part.filename or "file",
                "content_type": part.content_type or "application/octet-stream",
                "size": len(part.data),
                "etag": md5,
                "checksums": {
                    "sha256": hashlib.sha256(part.data).hexdigest(),
                    "md5": md5,
                },
                "metadata": {},
                "created_at": created,
                "expires_at": None,
                "urls": {"get": url},
            },
        )

    def _read_file(self, file_id: str) -> Answer:
        with self._lock:
            content = self.uploads.get(file_id)
        if content is None:
            raise self._unknown_path()
        return 200, {"content-type": "application/octet-stream"}, content

    def _delete_file(self, file_id: str) -> Answer:
        with self._lock:
            if self.failed_deletes > 0:
                self.failed_deletes -= 1
                raise _problem(503, "Service unavailable", "Service unavailable")
            if self.uploads.pop(file_id, None) is None:
                raise self._unknown_path()
            self.deleted_files.append(file_id)
        return 204, {}, b""

    def _read_video(self, value: object, origin: str) -> bytes | str:
        """What a model reads from a file input: an uploaded file's or a data URL's bytes; an
        outside URL (which Replicate would fetch) as the URL itself. A file of this account that
        is not there is a validation error, as on Replicate."""
        text = str(value)
        own = f"{origin}/v1/files/"
        if text.startswith(own):
            with self._lock:
                content = self.uploads.get(text[len(own) :])
            if content is None:
                raise _problem(422, "Input validation failed", "- video: file not found")
            return content
        header, _, data = text.partition(",")
        if text.startswith("data:") and header.endswith(";base64"):
            try:
                return base64.b64decode(data, validate=True)
            except ValueError:
                return text
        return text

    # -- create ------------------------------------------------------------------------------
    def _create(self, model: str, body: bytes, origin: str, *, wait: bool) -> Answer:
        request = json_object(
            body or b"{}", lambda: _problem(400, "Bad request", "Invalid JSON"), _no_input
        )
        given = request.get("input")
        if not isinstance(given, dict) or set(request) - {"input", "webhook", "stream"}:
            raise _no_input()
        schema = REPLICATE_SCHEMAS.get(model)
        problem = schema.problem(given) if schema else None
        if problem is not None:
            # Replicate's descriptions quote the value; reapi must keep none of it.
            detail = f"- {problem.field}: {problem.kind} ({given.get(problem.field)!r})"
            invalid = [{"type": problem.kind, "field": problem.field, "description": detail}]
            raise _problem(422, "Input validation failed", detail, invalid_fields=invalid)
        outcome = task_outcome(self._take_fault(), given.get("prompt"))
        if "video" in given and schema is not None and schema.output == "video":
            video = self._read_video(given["video"], origin)
            with self._lock:
                self.videos.append(video)
        prediction = _Prediction(secrets.token_hex(13), model, outcome, given, created_at=_now())
        with self._lock:
            self.fields[model] = sorted(given)
            self._predictions[prediction.id] = prediction
            if wait and self.wait_finishes:
                self._finish(prediction, origin)
            return json_answer(201, self._object(prediction, origin))

    # -- poll and cancel -------------------------------------------------------------------
    def _get(self, prediction_id: str, origin: str) -> Answer:
        with self._lock:
            prediction = self._find(prediction_id)
            if prediction.status not in _TERMINAL:
                prediction.polls += 1
                if prediction.polls <= self.polls_before_done:
                    prediction.status = "starting" if prediction.polls == 1 else "processing"
                else:
                    self._finish(prediction, origin)
            return json_answer(200, self._object(prediction, origin))

    def _cancel(self, prediction_id: str, origin: str) -> Answer:
        with self._lock:
            prediction = self._find(prediction_id)
            if prediction.status not in _TERMINAL:
                prediction.status = "canceled"
                prediction.completed_at = _now()
            return json_answer(200, self._object(prediction, origin))

    def _find(self, prediction_id: str) -> _Prediction:
        prediction = self._predictions.get(prediction_id)
        if prediction is None:
            raise _problem(404, "Not found", "The requested resource could not be found.")
        return prediction

    def _finish(self, prediction: _Prediction, origin: str) -> None:
        prediction.completed_at = _now()
        if prediction.outcome != "ok":
            prediction.status = "failed"
            prediction.error = _ERRORS[prediction.outcome]
            return
        prediction.status = "succeeded"
        schema = REPLICATE_SCHEMAS.get(prediction.model)
        kind = schema.output if schema else ("video" if "video" in prediction.model else "images")
        if kind == "video":
            name = f"{prediction.id}.mp4"
            self._files[name] = sample_mp4()
            prediction.output = f"{origin}/files/{name}"
            return
        count = prediction.input.get(schema.count_field or "", 1) if schema else 1
        urls_out = []
        for index in range(count if isinstance(count, int) else 1):
            name = f"{prediction.id}-{index}.png"
            self._files[name] = png_bytes(16, 16)
            urls_out.append(f"{origin}/files/{name}")
        prediction.output = urls_out if kind == "images" else urls_out[0]

    def _object(self, prediction: _Prediction, origin: str) -> dict[str, Any]:
        base = f"{origin}/v1/predictions/{prediction.id}"
        return {
            "id": prediction.id,
            "model": prediction.model,
            "version": "official",
            "input": prediction.input,
            "logs": "",
            "output": prediction.output,
            "data_removed": False,
            "error": prediction.error,
            "status": prediction.status,
            "created_at": prediction.created_at,
            "started_at": prediction.created_at if prediction.polls else None,
            "completed_at": prediction.completed_at,
            "urls": {"get": base, "cancel": base + "/cancel", "stream": base + "/stream"},
            "metrics": {"predict_time": 1.2} if prediction.status == "succeeded" else {},
        }
