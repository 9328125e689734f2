"""A simulator of xAI's Grok Imagine API for tests: `v1/images/generations`, `v1/images/edits`,
`v1/videos/generations` and `v1/videos/{request_id}` (PROVIDERS.md §8).

It speaks xAI's wire format field by field: `Authorization: Bearer`, JSON bodies validated
strictly (`size`, `quality` and `style` are refused as xAI refuses them, an edit takes `image` or
`images` but never both), OpenAI-style `{"error": {"message", "type", "param", "code"}}` answers,
JPEG images as `b64_json` or as URLs, and video requests that answer 202 with no body, then
`pending` with progress, then `done` with a `video.url`. Every URL points back at the simulator
(`<origin>/files/<id>.jpg|.mp4`) and needs no key.

xAI moderates silently, and so does the simulator: a prompt containing "forbidden" (or the
CONTENT_POLICY fault) gets images marked `respect_moderation: false` with no payload, and a
video request that ends `done` with `video.respect_moderation: false`.

Fault switches (`sim.faults`) apply to the creating calls and answer the xAI way: `ERROR_500` /
`ERROR_503` (500 / 503), `RATE_LIMIT` (429 with Retry-After), `QUOTA_EXHAUSTED` (403 in xAI's
legacy `{"code", "error"}` shape: no credits left; the wording is assumed), `CONTENT_POLICY`
(silent moderation) and `TASK_FAILS` (the request ends `failed`). Refuse, reset, hang, slow body
and truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._faults import Fault
from ._jpeg import jpeg_bytes
from ._media import sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import Outcome, ProviderSimulator, Refusal, flagged, json_object, task_outcome

__all__ = ["XAISimulator"]

_IMAGE_MODELS = frozenset(
    {"grok-imagine-image", "grok-imagine-image-quality", "grok-imagine-image-2.0"}
)
_VIDEO_MODELS = frozenset({"grok-imagine-video", "grok-imagine-video-1.5"})
_IMAGE_RATIOS = frozenset(
    {"1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9"}
    | {"1:2", "2:1", "auto"}
)
_VIDEO_RATIOS = frozenset(["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3"])
_IMAGE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "aspect_ratio",
        "resolution",
        "response_format",
        "user",
        "output_format",
    }
)
_EDIT_FIELDS = _IMAGE_FIELDS | {"image", "images"}
_VIDEO_FIELDS = frozenset(
    {"model", "prompt", "duration", "aspect_ratio", "resolution", "image", "reference_images"}
)
#: xAI's own refusal for these OpenAI fields ("Argument not supported").
_UNSUPPORTED = ("size", "quality", "style")
_ROUTE = re.compile(
    r"/v1/(?:images/(?P<images>generations|edits)|videos/(?:(?P<create>generations)"
    r"|(?P<video>[0-9a-f\-]{36}))|(?P<models>models))|/files/(?P<file>[\w\-]+\.(?:jpg|mp4))"
)
#: `created` of every model object (a fixed time: the simulator keeps no model history).
_MODELS_CREATED = 1_767_225_600
_SIDE = {"1k": 256, "2k": 512}  # small real JPEGs; only the tier's relative size is kept


def _error(
    status: int,
    message: str,
    code: str | None = None,
    kind: str = "invalid_request_error",
    headers: Mapping[str, str] | None = None,
) -> Refusal:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Refusal(json_answer(status, body, headers))


def _invalid(field: str) -> Refusal:
    return _error(400, f"Invalid value for argument: {field}", "invalid_argument")


@dataclass
class _Request:
    outcome: Outcome
    duration: int
    polls: int = 0
    file: str | None = None


class XAISimulator(ProviderSimulator):
    """One simulated xAI team. Thread-safe; state lives in memory."""

    #: The path the provider's base URL ends with.
    base_path = "/v1"
    _routes = _ROUTE
    _at_once = re.compile(r"/v1/models")
    #: Polls before a video is done: the first answers 202 with no body, the rest `pending`.
    polls_before_done: int

    def __init__(self, api_key: str = "sk-sim", *, polls_before_done: int = 2) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        self._videos: dict[str, _Request] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        if route["images"] and request.method == "POST":
            edit = route["images"] == "edits"
            return self._images(edit, _json_body(request.body), request.origin)
        if route["create"] and request.method == "POST":
            return self._create_video(_json_body(request.body))
        if route["video"] and request.method == "GET":
            return self._poll(route["video"], request.origin)
        if route["models"] and request.method == "GET":
            return self._models()
        raise _error(405, "Method not allowed", "method_not_allowed")

    def _models(self) -> Answer:
        """`GET /v1/models`: the models this key may use, OpenAI's list shape."""
        data = [
            {"id": model, "created": _MODELS_CREATED, "object": "model", "owned_by": "xai"}
            for model in sorted(_IMAGE_MODELS | _VIDEO_MODELS)
        ]
        return json_answer(200, {"data": data, "object": "list"})

    def _unknown_path(self) -> Refusal:
        return _error(404, "Not found", "not_found")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{name}"
        if route["images"]:
            return f"/v1/images/{route['images']}"
        if route["models"]:
            return "/v1/models"
        return "/v1/videos/generations" if route["create"] else "/v1/videos/{id}"

    def _authenticate(self, request: SimRequest) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or key != self.api_key:
            body = {
                "code": "Client specified an invalid argument",
                "error": "Incorrect API key provided.",
            }
            raise Refusal(json_answer(400 if key else 401, body))  # xAI: 400 for a wrong key

    def _take_fault(self) -> Fault:
        state = self.faults.take()
        fault = state.fault
        if fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if fault is Fault.ERROR_500 else 503
            raise _error(status, "The service is temporarily unavailable", None, "server_error")
        if fault is Fault.RATE_LIMIT:
            raise _error(
                429,
                "Too many requests",
                "rate_limit_exceeded",
                "rate_limit_error",
                {"retry-after": str(state.retry_after)},
            )
        if fault is Fault.QUOTA_EXHAUSTED:
            body = {
                "code": "The caller does not have permission to execute the specified operation",
                "error": "Your team has either used all available credits or reached its "
                "monthly spending limit.",
            }
            raise Refusal(json_answer(403, body))
        return fault

    # -- images ------------------------------------------------------------------------------
    def _images(self, edit: bool, request: dict[str, Any], origin: str) -> Answer:
        for name in _UNSUPPORTED:
            if name in request:
                raise _error(400, f"Argument not supported: {name}", "invalid_argument")
        unknown = set(request) - (_EDIT_FIELDS if edit else _IMAGE_FIELDS)
        if unknown:
            raise _error(400, f"Unknown argument: {sorted(unknown)[0]}", "invalid_argument")
        if request.get("model") not in _IMAGE_MODELS:
            raise _error(
                404, "The model does not exist or your team has no access to it", "model_not_found"
            )
        prompt = request.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("prompt")
        n = request.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10:
            raise _invalid("n")
        if request.get("aspect_ratio", "auto") not in _IMAGE_RATIOS:
            raise _invalid("aspect_ratio")
        resolution = request.get("resolution", "1k")
        if resolution not in _SIDE:
            raise _invalid("resolution")
        form = request.get("response_format", "url")
        if form not in ("url", "b64_json"):
            raise _invalid("response_format")
        if edit:
            _check_edit_images(request)
        fault = self._take_fault()
        moderated = fault is Fault.CONTENT_POLICY or flagged(prompt)
        image = jpeg_bytes(_SIDE[resolution], _SIDE[resolution])
        data = [self._image_item(image, form, origin, moderated) for _ in range(n)]
        return json_answer(200, {"data": data})

    def _image_item(self, image: bytes, form: str, origin: str, moderated: bool) -> dict[str, Any]:
        if moderated:  # silent moderation: an item without a payload
            return {
                form: "",
                "mime_type": "image/jpeg",
                "revised_prompt": "",
                "respect_moderation": False,
            }
        item: dict[str, Any] = {
            "mime_type": "image/jpeg",
            "revised_prompt": "",
            "respect_moderation": True,
        }
        if form == "b64_json":
            item["b64_json"] = base64.b64encode(image).decode()
        else:
            name = f"img{next(self._ids):06d}.jpg"
            with self._lock:
                self._files[name] = image
            item["url"] = f"{origin}/files/{name}"
        return item

    # -- video -------------------------------------------------------------------------------
    def _create_video(self, request: dict[str, Any]) -> Answer:
        unknown = set(request) - _VIDEO_FIELDS
        if unknown:
            raise _error(400, f"Unknown argument: {sorted(unknown)[0]}", "invalid_argument")
        if request.get("model") not in _VIDEO_MODELS:
            raise _error(
                404, "The model does not exist or your team has no access to it", "model_not_found"
            )
        prompt = request.get("prompt", "")
        if not isinstance(prompt, str) or (not prompt.strip() and "image" not in request):
            raise _invalid("prompt")
        duration = request.get("duration", 6)
        if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 15:
            raise _invalid("duration")
        if "aspect_ratio" in request and request["aspect_ratio"] not in _VIDEO_RATIOS:
            raise _invalid("aspect_ratio")
        if request.get("resolution", "480p") not in ("480p", "720p"):
            raise _invalid("resolution")
        if "image" in request and "reference_images" in request:
            raise _error(400, "image and reference_images cannot be combined", "invalid_argument")
        if "image" in request:
            _check_image_ref(request["image"], "image")
        refs = request.get("reference_images", [])
        if not isinstance(refs, list) or len(refs) > 7:
            raise _invalid("reference_images")
        for ref in refs:
            _check_image_ref(ref, "reference_images")
        outcome = task_outcome(self._take_fault(), prompt)
        request_id = str(uuid.uuid4())
        with self._lock:
            self._videos[request_id] = _Request(outcome, duration)
        return json_answer(200, {"request_id": request_id})

    def _poll(self, request_id: str, origin: str) -> Answer:
        with self._lock:
            video = self._videos.get(request_id)
            if video is None:
                raise _error(404, "Video request not found", "not_found")
            video.polls += 1
            if video.polls == 1 and self.polls_before_done > 0:
                return 202, {}, b""
            if video.polls <= self.polls_before_done:
                progress = 100 * (video.polls - 1) // self.polls_before_done
                return json_answer(200, {"status": "pending", "progress": progress})
            if video.outcome == "failed":
                error = {"code": "internal_error", "message": "Video generation failed"}
                return json_answer(200, {"status": "failed", "error": error})
            if video.file is None:
                video.file = f"vid{next(self._ids):06d}.mp4"
                self._files[video.file] = sample_mp4()
            moderated = video.outcome == "filtered"
            body = {
                "status": "done",
                "video": {
                    "url": f"{origin}/files/{video.file}",
                    "duration": video.duration,
                    "respect_moderation": not moderated,
                },
                "model": "grok-imagine-video",
                "progress": 100,
                "usage": {"cost_in_usd_ticks": 500_000_000 * video.duration},
            }
        return json_answer(200, body)


def _check_edit_images(request: dict[str, Any]) -> None:
    has_one, has_many = "image" in request, "images" in request
    if has_one == has_many:
        raise _error(400, "Provide exactly one of image or images", "invalid_argument")
    if has_one:
        _check_image_ref(request["image"], "image")
        if request.get("aspect_ratio", "auto") != "auto":
            raise _error(400, "aspect_ratio follows the input image", "invalid_argument")
        return
    images = request["images"]
    if not isinstance(images, list) or not 1 <= len(images) <= 3:
        raise _invalid("images")
    for image in images:
        _check_image_ref(image, "images")


def _check_image_ref(ref: object, field: str) -> None:
    """`{"url": <http(s) or data URL>, "type": "image_url"}` with a real image inside."""
    if (
        not isinstance(ref, dict)
        or set(ref) - {"url", "type"}
        or ref.get("type", "image_url") != "image_url"
    ):
        raise _invalid(field)
    url = ref.get("url")
    if not isinstance(url, str) or not url:
        raise _invalid(field)
    if url.startswith(("https://", "http://")):
        return
    header, _, data = url.partition(",")
    if not re.fullmatch(r"data:image/(png|jpeg|jpg|webp);base64", header):
        raise _invalid(field)
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(field) from None
    if not decoded.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")):
        raise _invalid(field)


def _json_body(body: bytes) -> dict[str, Any]:
    return json_object(
        body,
        lambda: _error(400, "The request body is not valid JSON", "invalid_json"),
        lambda: _error(400, "The request body must be a JSON object", "invalid_json"),
    )
