"""A simulator of the Gemini API for tests: image `generateContent` and its streaming twin
`streamGenerateContent`, Veo `predictLongRunning`, operation polling and keyed file downloads
(docs/providers/gemini.md and veo.md).

It speaks Google's wire format field by field: the `x-goog-api-key` header (or `?key=`), request
validation with Google's `{"error": {"code", "message", "status", "details"}}` answers, blocks as
HTTP 200 answers without an image, and operations that finish `done` with samples, an `error` or
filtered media. Finished videos are files on the simulator (`<origin>/v1beta/files/<id>:download
?alt=media`) that need the key, like the real ones. Prompts containing "forbidden" are blocked
the Gemini way (`promptFeedback.blockReason`) or the Veo way (`raiMediaFilteredReasons`).

`streamGenerateContent?alt=sse` sends the same answer as server-sent events, one
`GenerateContentResponse` chunk per `data:` event (CRLF line ends, as Google's): the text part
first, then the image with the finish reason and the full `usageMetadata`; the parts of all chunks
together are the parts of the answer that is not streamed. Without `alt=sse` the chunks come as
one JSON array. An error after the stream began is a chunk holding Google's error object.

Fault switches (`sim.faults`, a `FaultSwitch`) apply to the creating calls and answer Google's
way: `ERROR_500` (500 `INTERNAL`), `ERROR_503` (503 `UNAVAILABLE`), `RATE_LIMIT` (429
`RESOURCE_EXHAUSTED` with a `RetryInfo.retryDelay`), `QUOTA_EXHAUSTED` (429 `RESOURCE_EXHAUSTED`
with a per-day `QuotaFailure`), `CONTENT_POLICY` (an image withheld with `IMAGE_SAFETY`, or a
video filtered) and `TASK_FAILS` (an operation that ends `done` with an `error`; a streamed image
whose stream ends with an `INTERNAL` error chunk after its text). Refuse, reset,
hang, slow body and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from ._faults import Fault
from ._media import png_bytes, sample_mp4
from ._messages import Answer, SimRequest, SimResponse, json_answer
from ._provider_sim import Outcome, ProviderSimulator, Refusal, flagged, json_object, task_outcome

__all__ = ["GeminiSimulator"]

_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


@dataclass(frozen=True)
class _ImageModel:
    sizes: tuple[str, ...]
    ratios: tuple[str, ...]
    max_images: int


_IMAGE_MODELS = {
    "gemini-3-pro-image-preview": _ImageModel(("1K", "2K", "4K"), _RATIOS, 14),
    "gemini-3.1-flash-image-preview": _ImageModel(
        ("512", "1K", "2K", "4K"), (*_RATIOS, "1:4", "4:1", "1:8", "8:1"), 14
    ),
    # One size tier: the simulator is strict and refuses `imageSize` for it.
    "gemini-2.5-flash-image": _ImageModel((), _RATIOS, 3),
}
_VIDEO_MODELS = frozenset({"veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"})
_EDGE = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
_VIDEO_PARAMETERS = frozenset(
    {
        "aspectRatio",
        "durationSeconds",
        "resolution",
        "sampleCount",
        "negativePrompt",
        "personGeneration",
        "enhancePrompt",
    }
)
_ROUTE = re.compile(
    r"/v1beta/(?:models/(?P<model>[\w.\-]+)"
    r":(?P<verb>generateContent|streamGenerateContent|predictLongRunning)"
    r"|(?P<operation>models/[\w.\-]+/operations/[\w\-]+)"
    r"|models/(?P<info>[\w.\-]+)"
    r"|files/(?P<file>[\w\-]+):download)"
)
_MODEL_INFO = re.compile(r"/v1beta/models/[\w.\-]+")


def _chunks(body: dict[str, Any], *, fails: bool) -> list[dict[str, Any]]:
    """A whole answer as Gemini streams it: one chunk per part, the finish reason and the full
    usage on the last (earlier chunks count the prompt only). `fails`: the generation fails
    after the first chunk, which is followed by Google's error object."""
    candidates = body.get("candidates") or [{}]
    parts = candidates[0].get("content", {}).get("parts") or []
    if len(parts) < 2:
        return [body]
    meta: dict[str, Any] = {k: body[k] for k in ("modelVersion", "responseId") if k in body}
    prompt_only = {
        "promptTokenCount": body["usageMetadata"]["promptTokenCount"],
        "totalTokenCount": body["usageMetadata"]["promptTokenCount"],
    }
    chunks: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        last = index == len(parts) - 1
        if last:
            candidate["finishReason"] = candidates[0]["finishReason"]
        usage = body["usageMetadata"] if last else prompt_only
        chunks.append({"candidates": [candidate], "usageMetadata": usage, **meta})
    if fails:
        error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
        return [chunks[0], {"error": error}]
    return chunks


def _streamed(chunks: list[dict[str, Any]], *, sse: bool) -> Answer:
    if not sse:
        return json_answer(200, chunks)
    events = b"".join(
        b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\r\n\r\n"
        for chunk in chunks
    )
    return SimResponse(200, {"content-type": "text/event-stream"}, events)


def _error(code: int, status: str, message: str, *details: dict[str, Any]) -> Refusal:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return Refusal(json_answer(code, {"error": error}))


def _invalid(message: str) -> Refusal:
    return _error(400, "INVALID_ARGUMENT", message)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"Invalid value at '{what}', base64 string expected.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Invalid value at '{what}', base64 decoding failed.") from None


def _pixels(ratio: str, tier: str) -> tuple[int, int]:
    """The simulator's pixel grid: about tier² pixels at the ratio, edges multiples of 16."""
    a, b = (int(x) for x in ratio.split(":"))
    area = _EDGE[tier] ** 2
    width = math.sqrt(area * a / b)
    return max(16, round(width / 16) * 16), max(16, round(area / width / 16) * 16)


@lru_cache(maxsize=64)
def _image(ratio: str, tier: str) -> bytes:
    """A real PNG at 1/16 of the grid (a 4K PNG would only slow the tests down)."""
    width, height = _pixels(ratio, tier)
    return png_bytes(width // 16, height // 16)


@dataclass
class _Operation:
    model: str
    outcome: Outcome
    polls_left: int
    file_id: str | None = None


class GeminiSimulator(ProviderSimulator):
    """One simulated Gemini API account. Thread-safe; state lives in memory."""

    _routes = _ROUTE
    _at_once = _MODEL_INFO
    #: Polls that answer `done: false` before an operation finishes.
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 1) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        self._operations: dict[str, _Operation] = {}

    # -- entry points ------------------------------------------------------------------------
    def _serve_without_key(self, request: SimRequest, route: re.Match[str]) -> None:
        return None  # Gemini's files, unlike other providers' results, need the key

    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        method, origin = request.method, request.origin
        if route["verb"] and method == "POST":
            return self._create(route["model"], route["verb"], request, origin)
        if route["operation"] and method == "GET":
            return self._poll(route["operation"], origin)
        if route["info"] and method == "GET":
            return self._model_info(route["info"])
        if route["file"] and method == "GET":
            return self._serve_file(route["file"], request.query)
        raise _error(405, "INVALID_ARGUMENT", "Method not allowed.")

    def _unknown_path(self) -> Refusal:
        return _error(404, "NOT_FOUND", "The requested URL was not found on this server.")

    def _template(self, route: re.Match[str]) -> str:
        if route["verb"]:
            return f"/models/{{model}}:{route['verb']}"
        if route["operation"]:
            return "/models/{model}/operations/{id}"
        if route["info"]:
            return "/models/{model}"
        return "/files/{id}:download"

    # -- shared checks -------------------------------------------------------------------------
    def _authenticate(self, request: SimRequest) -> None:
        query = parse_qs(request.query).get("key", [])
        key = request.headers.get("x-goog-api-key") or next(iter(query), None)
        if not key:
            raise _error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers. Please use an API key.",
            )
        if key != self.api_key:
            raise _error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                },
            )

    def _take_fault(self) -> Fault:
        """One creating call's fault; the status faults are answered here, Google's way."""
        state = self.faults.take()
        if state.fault is Fault.ERROR_500:
            raise _error(500, "INTERNAL", "An internal error has occurred.")
        if state.fault is Fault.ERROR_503:
            raise _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if state.fault is Fault.RATE_LIMIT:
            raise _error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{state.retry_after}s",
                },
            )
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise _error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_requests_per_model_per_day",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                        }
                    ],
                },
            )
        return state.fault

    def _create(self, model: str, verb: str, sim_request: SimRequest, origin: str) -> Answer:
        request = json_object(
            sim_request.body,
            lambda: _invalid("Invalid JSON payload received."),
            lambda: _invalid("Invalid JSON payload received. Expected an object."),
        )
        if verb in ("generateContent", "streamGenerateContent"):
            spec = _IMAGE_MODELS.get(model)
            if spec is None:
                raise _error(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version "
                    "v1beta, or is not supported for generateContent.",
                )
            prompt, ratio, tier = self._check_image_request(spec, request)
            fault = self._take_fault()
            body = self._image_answer(model, prompt, ratio, tier, fault)
            if verb == "generateContent":
                return json_answer(200, body)
            sse = sim_request.params().get("alt") == "sse"
            return _streamed(_chunks(body, fails=fault is Fault.TASK_FAILS), sse=sse)
        if model not in _VIDEO_MODELS:
            raise _error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")
        prompt = self._check_video_request(request)
        return self._start_operation(model, prompt, self._take_fault())

    # -- models ------------------------------------------------------------------------------
    def _model_info(self, model: str) -> Answer:
        """`GET /v1beta/models/{model}`: the Model resource (python-genai's `models.get`)."""
        if model in _IMAGE_MODELS:
            methods = ["generateContent", "countTokens", "streamGenerateContent"]
        elif model in _VIDEO_MODELS:
            methods = ["predictLongRunning"]
        else:
            raise _error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")
        return json_answer(
            200,
            {
                "name": f"models/{model}",
                "version": "sim",
                "displayName": model,
                "supportedGenerationMethods": methods,
            },
        )

    # -- images ------------------------------------------------------------------------------
    def _check_image_request(
        self, spec: _ImageModel, request: dict[str, Any]
    ) -> tuple[str, str, str]:
        contents = request.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _invalid("* GenerateContentRequest.contents: contents is not specified")
        texts, images = [], 0
        for content in contents:
            parts = content.get("parts") if isinstance(content, dict) else None
            if not isinstance(parts, list) or not parts:
                raise _invalid("* GenerateContentRequest.contents.parts: must not be empty")
            for part in parts:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif isinstance(part, dict) and isinstance(part.get("inlineData"), dict):
                    inline = part["inlineData"]
                    if inline.get("mimeType") not in _IMAGE_TYPES:
                        raise _invalid("Unsupported MIME type for inlineData.")
                    _b64(inline.get("data"), "contents.parts.inline_data.data")
                    images += 1
                else:
                    raise _invalid("* GenerateContentRequest.contents.parts: unknown part kind")
        if images > spec.max_images:
            raise _invalid(f"Too many input images: at most {spec.max_images} are supported.")
        config = request.get("generationConfig") or {}
        modalities = config.get("responseModalities", ["TEXT", "IMAGE"])
        if not isinstance(modalities, list) or "IMAGE" not in modalities:
            raise _invalid("This model only supports responseModalities including IMAGE.")
        image_config = config.get("imageConfig") or {}
        unknown = set(image_config) - {"aspectRatio", "imageSize"}
        if unknown:
            raise _invalid(f"{sorted(unknown)[0]} parameter is not supported in Gemini API.")
        ratio = image_config.get("aspectRatio", "1:1")
        if ratio not in spec.ratios:
            raise _invalid("Unsupported aspect ratio.")
        tier = image_config.get("imageSize", "1K")
        if "imageSize" in image_config and tier not in spec.sizes:
            raise _invalid("Unsupported image size for this model.")
        return " ".join(texts), ratio, tier

    def _image_answer(
        self, model: str, prompt: str, ratio: str, tier: str, fault: Fault
    ) -> dict[str, Any]:
        usage = {"promptTokenCount": 12, "totalTokenCount": 12}
        if flagged(prompt):
            return {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": usage,
                "modelVersion": model,
            }
        if fault is Fault.CONTENT_POLICY:
            candidate = {"content": {"role": "model", "parts": []}, "finishReason": "IMAGE_SAFETY"}
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
        image = _image(ratio, tier)
        parts = [
            {"text": "Here is the image you asked for."},
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}},
        ]
        with self._lock:
            response_id = f"sim-{next(self._ids)}"
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 12,
                "candidatesTokenCount": 1300,
                "totalTokenCount": 1312,
                "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
            },
            "modelVersion": model,
            "responseId": response_id,
        }

    # -- Veo -----------------------------------------------------------------------------------
    def _check_video_request(self, request: dict[str, Any]) -> str:
        instances = request.get("instances")
        if not isinstance(instances, list) or len(instances) != 1:
            raise _invalid("instances must hold exactly one instance.")
        instance = instances[0] if isinstance(instances[0], dict) else {}
        unknown = set(instance) - {"prompt", "image", "lastFrame", "referenceImages", "video"}
        if unknown:
            raise _invalid(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}".')
        prompt = instance.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise _invalid("prompt must be a string.")
        image = instance.get("image")
        if image is not None:
            if not isinstance(image, dict) or "gcsUri" in image:
                raise _invalid("gcs_uri parameter is not supported in Gemini API.")
            if not str(image.get("mimeType", "")).startswith("image/"):
                raise _invalid("image.mimeType must be an image type.")
            _b64(image.get("bytesBase64Encoded"), "instances[0].image.bytes_base64_encoded")
        if not prompt and image is None:
            raise _invalid("A prompt or an image is required.")
        parameters = request.get("parameters") or {}
        unknown = set(parameters) - _VIDEO_PARAMETERS
        if unknown:
            raise _invalid(f"{sorted(unknown)[0]} parameter is not supported in Gemini API.")
        if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            raise _invalid("aspectRatio must be 16:9 or 9:16.")
        seconds = parameters.get("durationSeconds", 8)
        if seconds not in (4, 6, 8) or isinstance(seconds, bool):
            raise _invalid("durationSeconds must be 4, 6 or 8.")
        resolution = parameters.get("resolution", "720p")
        if resolution not in ("720p", "1080p", "4k"):
            raise _invalid("resolution must be 720p, 1080p or 4k.")
        if resolution != "720p" and seconds != 8:
            raise _invalid(f"{resolution} videos must be 8 seconds long.")
        if parameters.get("sampleCount", 1) not in (1, 2, 3, 4):
            raise _invalid("sampleCount must be between 1 and 4.")
        return prompt or ""

    def _start_operation(self, model: str, prompt: str, fault: Fault) -> Answer:
        outcome = task_outcome(fault, prompt)
        with self._lock:
            name = f"models/{model}/operations/sim{next(self._ids):06d}"
            self._operations[name] = _Operation(model, outcome, self.polls_before_done)
        return json_answer(200, {"name": name})

    def _poll(self, name: str, origin: str) -> Answer:
        with self._lock:
            operation = self._operations.get(name)
            if operation is None:
                raise _error(404, "NOT_FOUND", "Operation not found.")
            if operation.polls_left > 0:
                operation.polls_left -= 1
                return json_answer(200, {"name": name, "done": False})
            if operation.outcome == "ok" and operation.file_id is None:
                operation.file_id = f"sim{next(self._ids):06d}"
                self._files[operation.file_id] = sample_mp4()
        if operation.outcome == "failed":
            error = {"code": 13, "message": "Video generation failed. Please try again."}
            return json_answer(200, {"name": name, "done": True, "error": error})
        samples = []
        reasons: list[str] = []
        if operation.outcome == "filtered":
            reasons = ["Video could not be generated because the prompt violated the policy."]
        else:
            uri = f"{origin}/v1beta/files/{operation.file_id}:download?alt=media"
            samples = [{"video": {"uri": uri}}]
        return json_answer(
            200,
            {
                "name": name,
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                    "PredictLongRunningResponse",
                    "generateVideoResponse": {
                        "generatedSamples": samples,
                        "raiMediaFilteredCount": len(reasons),
                        "raiMediaFilteredReasons": reasons,
                    },
                },
            },
        )

    def _serve_file(self, file_id: str, query: str) -> Answer:
        if parse_qs(query).get("alt") != ["media"]:
            raise _invalid("Downloads need alt=media.")
        with self._lock:
            content = self._files.get(file_id)
        if content is None:
            raise _error(404, "NOT_FOUND", "File not found.")
        return 200, {"content-type": "video/mp4"}, content
