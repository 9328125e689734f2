"""A simulator of the Gemini API for tests: image `generateContent`, Veo `predictLongRunning`,
operation polling and keyed file downloads (PROVIDERS.md §3 and §4).

It speaks Google's wire format field by field: the `x-goog-api-key` header (or `?key=`), request
validation with Google's `{"error": {"code", "message", "status"}}` answers, blocks as HTTP 200
answers without an image, operations that finish `done` with samples, an `error` or filtered
media. Prompts containing "forbidden" are blocked the Gemini way (`promptFeedback.blockReason`)
or the Veo way (`raiMediaFilteredReasons`).

`GeminiSimulator.handle()` is framework neutral (method, path, query, headers, body in; status,
headers, body out); `transport()` serves it to httpx directly for tests.

Fault switches (`sim.faults`) apply to the creating calls (`generateContent`,
`predictLongRunning`) in order, one fault per call: `server_error` (503 UNAVAILABLE),
`internal_error` (500 INTERNAL), `rate_limit` (429 RESOURCE_EXHAUSTED with a `RetryInfo`),
`content_block` (an image withheld with `IMAGE_SAFETY`, or a video filtered), `task_failed`
(the operation ends `done` with an `error`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import struct
import threading
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx

__all__ = ["GeminiFault", "GeminiSimulator"]

GeminiFault = Literal[
    "server_error", "internal_error", "rate_limit", "content_block", "task_failed"
]
Answer = tuple[int, dict[str, str], bytes]

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
    r"/v1beta/(?:models/(?P<model>[\w.\-]+):(?P<verb>generateContent|predictLongRunning)"
    r"|(?P<operation>models/[\w.\-]+/operations/[\w\-]+)"
    r"|files/(?P<file>[\w\-]+):download)"
)


class _Refusal(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


def _error(code: int, status: str, message: str, *details: dict[str, Any]) -> _Refusal:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return _Refusal(_json(code, {"error": error}))


def _invalid(message: str) -> _Refusal:
    return _error(400, "INVALID_ARGUMENT", message)


def _json(status: int, body: object) -> Answer:
    return status, {"content-type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"Invalid value at '{what}', base64 string expected.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Invalid value at '{what}', base64 decoding failed.") from None


@lru_cache(maxsize=32)
def _png(width: int, height: int) -> bytes:
    """A real grey PNG of the given size (cached: large tiers compress once)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\0" + b"\x80" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 1))
        + chunk(b"IEND", b"")
    )


def _mp4() -> bytes:
    """A minimal ISO-BMFF file (`ftyp` + empty `mdat`)."""
    brands = b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands + struct.pack(">I", 8) + b"mdat"


def _pixels(ratio: str, tier: str) -> tuple[int, int]:
    """The simulator's pixel grid: about tier² pixels at the ratio, edges multiples of 16."""
    a, b = (int(x) for x in ratio.split(":"))
    area = _EDGE[tier] ** 2
    width = math.sqrt(area * a / b)
    return max(16, round(width / 16) * 16), max(16, round(area / width / 16) * 16)


@dataclass
class _Operation:
    model: str
    outcome: Literal["ok", "failed", "filtered"]
    polls_left: int
    file_id: str | None = None


class GeminiSimulator:
    """One simulated Gemini API account. Thread-safe; state lives in memory."""

    def __init__(
        self, api_key: str = "sim-gemini-key", *, polls_before_done: int = 1, retry_after: int = 2
    ) -> None:
        self.api_key = api_key
        #: Polls that answer `done: false` before an operation finishes.
        self.polls_before_done = polls_before_done
        #: Seconds a 429 asks the caller to wait (as `RetryInfo.retryDelay`).
        self.retry_after = retry_after
        self.faults: deque[GeminiFault] = deque()
        #: Method and path of each request served, in order (never bodies), for assertions.
        self.seen: list[str] = []
        self._operations: dict[str, _Operation] = {}
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, *faults: GeminiFault) -> None:
        """Queue faults for the next creating calls, one per call."""
        with self._lock:
            self.faults.extend(faults)

    # -- entry points ------------------------------------------------------------------------
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
        """Answer one request; `origin` (scheme://host:port) is where file URLs point."""
        with self._lock:
            self.seen.append(f"{method} {path}")
        try:
            route = _ROUTE.fullmatch(path)
            if route is None:
                raise _error(404, "NOT_FOUND", "The requested URL was not found on this server.")
            self._authenticate(headers, query)
            if route["verb"] and method == "POST":
                return self._create(route["model"], route["verb"], body, origin)
            if route["operation"] and method == "GET":
                return self._poll(route["operation"], origin)
            if route["file"] and method == "GET":
                return self._download(route["file"], query)
            raise _error(405, "INVALID_ARGUMENT", "Method not allowed.")
        except _Refusal as refusal:
            return refusal.answer

    def transport(self) -> httpx.MockTransport:
        """Serve this simulator to an httpx client without a socket."""

        def serve(request: httpx.Request) -> httpx.Response:
            origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
            status, headers, content = self.handle(
                request.method,
                request.url.path,
                request.url.query.decode(),
                {k.lower(): v for k, v in request.headers.items()},
                request.content,
                origin=origin,
            )
            return httpx.Response(status, headers=headers, content=content)

        return httpx.MockTransport(serve)

    # -- shared checks -------------------------------------------------------------------------
    def _authenticate(self, headers: Mapping[str, str], query: str) -> None:
        key = headers.get("x-goog-api-key") or next(iter(parse_qs(query).get("key", [])), None)
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

    def _next_fault(self) -> GeminiFault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _raise_status_fault(self, fault: GeminiFault | None) -> None:
        if fault == "server_error":
            raise _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if fault == "internal_error":
            raise _error(500, "INTERNAL", "An internal error has occurred.")
        if fault == "rate_limit":
            raise _error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{self.retry_after}s",
                },
            )

    def _create(self, model: str, verb: str, body: bytes, origin: str) -> Answer:
        try:
            request = json.loads(body)
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        if not isinstance(request, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        if verb == "generateContent":
            spec = _IMAGE_MODELS.get(model)
            if spec is None:
                raise _error(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version "
                    "v1beta, or is not supported for generateContent.",
                )
            prompt, ratio, tier = self._check_image_request(spec, request)
            fault = self._next_fault()
            self._raise_status_fault(fault)
            return self._image_answer(model, prompt, ratio, tier, fault)
        if model not in _VIDEO_MODELS:
            raise _error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")
        prompt = self._check_video_request(request)
        fault = self._next_fault()
        self._raise_status_fault(fault)
        return self._start_operation(model, prompt, fault)

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
        self, model: str, prompt: str, ratio: str, tier: str, fault: GeminiFault | None
    ) -> Answer:
        usage = {"promptTokenCount": 12, "totalTokenCount": 12}
        if "forbidden" in prompt.lower():
            return _json(
                200,
                {
                    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                    "usageMetadata": usage,
                    "modelVersion": model,
                },
            )
        if fault == "content_block":
            candidate = {"content": {"role": "model", "parts": []}, "finishReason": "IMAGE_SAFETY"}
            return _json(
                200, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
            )
        image = _png(*_pixels(ratio, tier))
        parts = [
            {"text": "Here is the image you asked for."},
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}},
        ]
        with self._lock:
            response_id = f"sim-{next(self._ids)}"
        return _json(
            200,
            {
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
            },
        )

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

    def _start_operation(self, model: str, prompt: str, fault: GeminiFault | None) -> Answer:
        filtered = "forbidden" in prompt.lower() or fault == "content_block"
        outcome: Literal["ok", "failed", "filtered"] = (
            "filtered" if filtered else "failed" if fault == "task_failed" else "ok"
        )
        with self._lock:
            name = f"models/{model}/operations/sim{next(self._ids):06d}"
            self._operations[name] = _Operation(model, outcome, self.polls_before_done)
        return _json(200, {"name": name})

    def _poll(self, name: str, origin: str) -> Answer:
        with self._lock:
            operation = self._operations.get(name)
            if operation is None:
                raise _error(404, "NOT_FOUND", "Operation not found.")
            if operation.polls_left > 0:
                operation.polls_left -= 1
                return _json(200, {"name": name, "done": False})
            if operation.outcome == "ok" and operation.file_id is None:
                operation.file_id = f"sim{next(self._ids):06d}"
                self._files[operation.file_id] = _mp4()
        if operation.outcome == "failed":
            error = {"code": 13, "message": "Video generation failed. Please try again."}
            return _json(200, {"name": name, "done": True, "error": error})
        samples = []
        reasons: list[str] = []
        if operation.outcome == "filtered":
            reasons = ["Video could not be generated because the prompt violated the policy."]
        else:
            uri = f"{origin}/v1beta/files/{operation.file_id}:download?alt=media"
            samples = [{"video": {"uri": uri}}]
        return _json(
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

    def _download(self, file_id: str, query: str) -> Answer:
        if parse_qs(query).get("alt") != ["media"]:
            raise _invalid("Downloads need alt=media.")
        with self._lock:
            content = self._files.get(file_id)
        if content is None:
            raise _error(404, "NOT_FOUND", "File not found.")
        return 200, {"content-type": "video/mp4"}, content
