"""A simulator of OpenAI's Images and Videos APIs (PROVIDERS.md §1 and §2), field by field.

Like the real API, its 400 messages quote the submitted value (and, for prompt problems, the
prompt): reapi must reduce them to codes. Prompts containing "forbidden" are blocked the way
OpenAI blocks them (`moderation_blocked`).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from ._faults import Fault, FaultSwitch
from ._http import Answer, json_answer
from ._media import png_bytes, sample_mp4

__all__ = ["OpenAISimulator"]

_SIZES = {"auto", "1024x1024", "1536x1024", "1024x1536"}
_QUALITIES = {"auto", "low", "medium", "high", "standard", "hd"}
_FORMATS = {"png", "jpeg", "webp"}
_VIDEO_SIZES = {"720x1280", "1280x720", "1024x1792", "1792x1024"}
_VIDEO_SECONDS = {"4", "8", "12"}


class _Refusal(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None,
        kind: str,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.answer = json_answer(
            status,
            {"error": {"message": message, "type": kind, "param": param, "code": code}},
            headers,
        )


def _invalid(param: str, message: str) -> _Refusal:
    return _Refusal(400, message, code="invalid_value", kind="invalid_request_error", param=param)


def _size_ok(model: str, size: str) -> bool:
    if size in _SIZES:
        return True
    if not model.startswith("gpt-image-2"):
        return False
    width, sep, height = size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        return False
    w, h = int(width), int(height)
    long_edge, short_edge = max(w, h), min(w, h)
    return (
        w % 16 == 0
        and h % 16 == 0
        and short_edge > 0
        and long_edge <= 3840
        and short_edge <= 2160
        and long_edge <= 3 * short_edge
    )


@dataclass
class _Video:
    id: str
    model: str
    seconds: str
    size: str
    created_at: int
    fails: str | None  # None, or the error code it will end with
    polls: int = 0
    status: str = "queued"
    completed_at: int | None = None


class OpenAISimulator:
    """One simulated OpenAI account. Thread-safe; nothing but job metadata is kept."""

    def __init__(self, api_key: str = "sk-sim", *, polls_to_complete: int = 2) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        #: App-level faults (content policy, failing tasks, quota); SimServer sets its own.
        self.faults = FaultSwitch()
        #: Requests served per "METHOD path-template", for assertions (never bodies).
        self.requests: dict[str, int] = {}
        self._videos: dict[str, _Video] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

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
        try:
            if headers.get("authorization") != f"Bearer {self.api_key}":
                raise _Refusal(
                    401,
                    "Incorrect API key provided.",
                    code="invalid_api_key",
                    kind="invalid_request_error",
                )
            return self._route(method, path.removeprefix("/v1"), query, headers, body)
        except _Refusal as refusal:
            return refusal.answer

    def _count(self, key: str) -> None:
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1

    def _route(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/images/generations":
            self._count("POST /images/generations")
            return self._images(self._json(body), edit=False)
        if method == "POST" and path == "/images/edits":
            self._count("POST /images/edits")
            return self._images(self._form(headers, body), edit=True)
        if parts[0] == "videos":
            return self._videos_route(method, parts[1:], query, headers, body)
        raise _Refusal(404, f"Unknown path {path}", code=None, kind="invalid_request_error")

    # -- request bodies ------------------------------------------------------------------------
    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            parsed = json.loads(body)
        except ValueError:
            raise _Refusal(
                400,
                "We could not parse the JSON body of your request.",
                code=None,
                kind="invalid_request_error",
            ) from None
        if not isinstance(parsed, dict):
            raise _invalid("body", "The body must be a JSON object.")
        return parsed

    @staticmethod
    def _form(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _invalid("body", "Expected multipart/form-data.")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            payload = payload if isinstance(payload, bytes) else b""
            if part.get_filename() is not None:
                fields.setdefault(str(name), []).append(payload)
            else:
                fields[str(name)] = payload.decode()
        return fields

    # -- images --------------------------------------------------------------------------------
    def _policy(self, prompt: str) -> None:
        state = self.faults.take()
        if "forbidden" in prompt.lower() or state.fault is Fault.CONTENT_POLICY:
            raise _Refusal(
                400,
                f"Your request was rejected by the safety system: '{prompt}'",
                code="moderation_blocked",
                kind="image_generation_user_error",
            )
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise _Refusal(
                429,
                "You exceeded your current quota.",
                code="insufficient_quota",
                kind="insufficient_quota",
            )

    def _images(self, fields: dict[str, Any], *, edit: bool) -> Answer:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _invalid("prompt", "Missing required parameter: 'prompt'.")
        if len(prompt) > 32000:
            raise _invalid("prompt", f"Prompt too long: '{prompt[:50]}...'")
        model = str(fields.get("model") or ("gpt-image-1.5" if edit else "dall-e-2"))
        n = int(fields.get("n") or 1)
        if not 1 <= n <= 10:
            raise _invalid("n", f"Invalid n {n}: must be between 1 and 10.")
        size = str(fields.get("size") or "auto")
        if not _size_ok(model, size):
            raise _invalid("size", f"Invalid size '{size}'.")
        quality = str(fields.get("quality") or "auto")
        if quality not in _QUALITIES:
            raise _invalid("quality", f"Invalid quality '{quality}'.")
        output_format = str(fields.get("output_format") or "png")
        if output_format not in _FORMATS:
            raise _invalid("output_format", f"Invalid output_format '{output_format}'.")
        if edit:
            images = list(fields.get("image[]", [])) + list(fields.get("image", []))
            if not 1 <= len(images) <= 16:
                raise _invalid("image", "Provide between 1 and 16 images.")
            for image in images + list(fields.get("mask", [])):
                if not image.startswith((b"\x89PNG", b"\xff\xd8\xff", b"RIFF")):
                    raise _invalid("image", "Invalid image file: unsupported format.")
        self._policy(prompt)
        shown = "1024x1024" if size == "auto" else size
        width, _, height = shown.partition("x")
        scale = max(int(width), int(height)) / 64
        png = png_bytes(max(int(int(width) / scale), 1), max(int(int(height) / scale), 1))
        return json_answer(
            200,
            {
                "created": int(time.time()),
                "background": "opaque",
                "output_format": output_format,
                "quality": "medium" if quality == "auto" else quality,
                "size": shown,
                "data": [{"b64_json": base64.b64encode(png).decode()} for _ in range(n)],
                "usage": {
                    "input_tokens": 50,
                    "output_tokens": 4160,
                    "total_tokens": 4210,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
                    "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0},
                },
            },
        )

    # -- videos --------------------------------------------------------------------------------
    def _videos_route(
        self, method: str, rest: list[str], query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        if method == "POST" and not rest:
            self._count("POST /videos")
            is_form = headers.get("content-type", "").startswith("multipart/form-data")
            return self._create_video(self._form(headers, body) if is_form else self._json(body))
        if method == "GET" and not rest:
            self._count("GET /videos")
            return self._list(query)
        video = self._videos.get(rest[0]) if rest else None
        if video is None:
            raise _Refusal(404, "Video not found.", code="not_found", kind="invalid_request_error")
        if method == "GET" and len(rest) == 1:
            self._count("GET /videos/{id}")
            self._advance(video)
            return json_answer(200, self._object(video), {"openai-poll-after-ms": "10"})
        if method == "GET" and rest[1:] == ["content"]:
            self._count("GET /videos/{id}/content")
            if video.status != "completed":
                raise _Refusal(
                    404, "Video is not ready.", code="not_found", kind="invalid_request_error"
                )
            if "variant=thumbnail" in query or "variant=spritesheet" in query:
                return 200, {"content-type": "image/png"}, png_bytes(64, 36)
            return 200, {"content-type": "video/mp4"}, sample_mp4()
        if method == "DELETE" and len(rest) == 1:
            self._count("DELETE /videos/{id}")
            with self._lock:
                self._videos.pop(video.id, None)
            return json_answer(200, {"id": video.id, "object": "video.deleted", "deleted": True})
        raise _Refusal(405, "Method not allowed.", code=None, kind="invalid_request_error")

    def _create_video(self, fields: dict[str, Any]) -> Answer:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _invalid("prompt", "Missing required parameter: 'prompt'.")
        seconds = str(fields.get("seconds") or "4")
        if seconds not in _VIDEO_SECONDS:
            raise _invalid("seconds", f"Invalid seconds '{seconds}'.")
        size = str(fields.get("size") or "720x1280")
        if size not in _VIDEO_SIZES:
            raise _invalid("size", f"Invalid size '{size}'.")
        state = self.faults.take()
        if state.fault is Fault.QUOTA_EXHAUSTED:
            raise _Refusal(
                429,
                "You exceeded your current quota.",
                code="insufficient_quota",
                kind="insufficient_quota",
            )
        fails = None
        if "forbidden" in prompt.lower() or state.fault is Fault.CONTENT_POLICY:
            fails = "moderation_blocked"
        elif state.fault is Fault.TASK_FAILS:
            fails = "video_generation_failed"
        video = _Video(
            f"video_{next(self._ids):06d}",
            str(fields.get("model") or "sora-2"),
            seconds,
            size,
            int(time.time()),
            fails,
        )
        with self._lock:
            self._videos[video.id] = video
        return json_answer(200, self._object(video))

    def _advance(self, video: _Video) -> None:
        with self._lock:
            if video.status in ("completed", "failed"):
                return
            video.polls += 1
            if video.polls < self.polls_to_complete:
                video.status = "in_progress"
            else:
                video.status = "failed" if video.fails else "completed"
                video.completed_at = int(time.time())

    def _object(self, video: _Video) -> dict[str, Any]:
        progress = {"queued": 0, "in_progress": 50, "completed": 100, "failed": 0}[video.status]
        body: dict[str, Any] = {
            "id": video.id,
            "object": "video",
            "model": video.model,
            "status": video.status,
            "progress": progress,
            "created_at": video.created_at,
            "completed_at": video.completed_at,
            "expires_at": video.completed_at + 3600 if video.completed_at else None,
            "seconds": video.seconds,
            "size": video.size,
            "prompt": None,
            "remixed_from_video_id": None,
            "error": None,
        }
        if video.status == "failed":
            body["error"] = {"code": video.fails, "message": "Video generation failed."}
        return body

    def _list(self, query: str) -> Answer:
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        videos = sorted(
            self._videos.values(), key=lambda v: v.id, reverse=params.get("order", "desc") == "desc"
        )
        ids = [v.id for v in videos]
        if params.get("after") in ids:
            videos = videos[ids.index(params["after"]) + 1 :]
        limit = int(params.get("limit") or 20)
        page = [self._object(v) for v in videos[:limit]]
        return json_answer(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(videos) > limit,
            },
        )
