"""Gemini image models ("Nano Banana") through `models/{model}:generateContent` on the Gemini API.

Wire format: docs/providers/gemini.md. One call makes one image, so `n > 1` is n identical calls
sent together. Google reports a blocked prompt or image as HTTP 200 with no image part, so the
answer is read for `promptFeedback.blockReason` and the candidate's `finishReason` before it
counts as a success. Veo videos on the same key are served by `VeoAdapter` (veo.py); this adapter
hands video calls to it so one `gemini` provider serves both.

On a route with `stream_idle_timeout` the call is `streamGenerateContent?alt=sse`: the same answer
as server-sent events, each `data:` a `GenerateContentResponse` chunk holding some of the parts
(the text comes before the image), the last with the finish reason and the final token counts.
The chunks are merged into the one answer `generateContent` would have given. An error after the
stream began comes as a chunk holding Google's error object, mapped as the same error answered
with its code as the HTTP status would be.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from .._exceptions import APIResponseError, ContentPolicyError, ReapiError
from .._payload import File
from .._sse import is_event_stream, read_events
from ..catalog import Route
from ._base import Connection, ImageCall, VideoCall, _safe_code
from ._google import GoogleAdapter
from ._protocol import (
    Batch,
    GeneratedFile,
    ImageResult,
    Protocol,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._util import b64decode, drop_none
from .veo import VeoAdapter

__all__ = ["GeminiAdapter"]

#: finishReason values that mean the output was withheld under a content policy (types.py
#: FinishReason). NO_IMAGE, IMAGE_OTHER, OTHER and the rest are failures of the model instead.
_BLOCKED = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


class GeminiAdapter(GoogleAdapter):
    name = "gemini"

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._veo = VeoAdapter(connection)

    def probe(self, route: Route) -> UpstreamRequest:
        """`GET /models/{model}` (the model's metadata, python-genai's `models.get`)."""
        url = self.connection.url(f"models/{route.upstream_model}")
        return UpstreamRequest("GET", url, self._headers(), purpose="probe")

    # -- images ------------------------------------------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        model, idle = call.route.upstream_model, call.route.stream_idle_timeout
        verb = "generateContent" if idle is None else "streamGenerateContent?alt=sse"
        url = self.connection.url(f"models/{model}:{verb}")
        request = UpstreamRequest(
            "POST", url, self._headers(), json=self._image_body(call), idle_timeout=idle
        )
        replies: tuple[UpstreamResponse, ...]
        if call.params.n == 1:
            reply = yield request
            replies = (reply,)
        else:
            replies = yield Batch((request,) * call.params.n)
        images = []
        usage: dict[str, int] = {}
        for reply in replies:
            image, reply_usage = self._one_image(reply)
            images.append(image)
            for key, value in reply_usage.items():
                usage[key] = usage.get(key, 0) + value
        first = images[0]
        return ImageResult(
            images=tuple(images),
            usage=usage or None,
            output_format=_FORMATS.get(first.content_type),
            size=_png_size(first.data or b""),
        )

    def _image_body(self, call: ImageCall) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": call.payload.get("prompt")}]
        files: tuple[File, ...] = call.payload.get("images") or ()
        for file in files:
            data = base64.b64encode(file.content).decode()
            parts.append({"inlineData": {"mimeType": file.content_type, "data": data}})
        # Models with a single size tier (2.5 Flash Image) are not sent `imageSize` at all.
        sends_size = call.route.options.get("image_size", True)
        image_config = drop_none(
            {
                "aspectRatio": call.shape.aspect_ratio,
                "imageSize": call.shape.resolution if sends_size else None,
            }
        )
        config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
        if image_config:
            config["imageConfig"] = image_config
        if call.params.seed is not None:
            config["seed"] = call.params.seed
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def _one_image(self, response: UpstreamResponse) -> tuple[GeneratedFile, dict[str, int]]:
        if is_event_stream(response.header("content-type")) and response.status < 400:
            body = self._merged_stream(response)
        else:
            body = self.check(response).json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError("the provider's answer is not an object", provider=self.provider)
        feedback = body.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if block:
            raise self._blocked(response, str(block), "the prompt")
        candidates = body.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        candidate = candidate if isinstance(candidate, dict) else {}
        image = self._image_part(candidate)
        reason = candidate.get("finishReason")
        if image is None and reason in _BLOCKED:
            raise self._blocked(response, str(reason), "the image")
        if image is None:
            raise APIResponseError(
                "the provider returned no image",
                provider=self.provider,
                status=response.status,
                provider_code=_safe_code(reason if isinstance(reason, str) else None),
            )
        return image, _usage(body.get("usageMetadata"))

    def _merged_stream(self, response: UpstreamResponse) -> dict[str, Any]:
        """The chunks of a streamed answer as one answer: every candidate part in order, and
        the latest of each other field (the token counts grow to their final values)."""
        merged: dict[str, Any] = {}
        parts: list[Any] = []
        finish: object = None
        candidates_seen = False
        for event in read_events(response.content, self.provider):
            chunk = event.json(self.provider)
            if not isinstance(chunk, dict):
                raise APIResponseError(
                    "the provider sent a chunk that is not an object", provider=self.provider
                )
            if "error" in chunk:
                raise self._chunk_error(chunk, response)
            merged.update({k: v for k, v in chunk.items() if k != "candidates"})
            candidates = chunk.get("candidates")
            candidate = candidates[0] if isinstance(candidates, list) and candidates else None
            if isinstance(candidate, dict):
                candidates_seen = True
                content = candidate.get("content")
                chunk_parts = content.get("parts") if isinstance(content, dict) else None
                parts.extend(chunk_parts if isinstance(chunk_parts, list) else ())
                finish = candidate.get("finishReason") or finish
        if candidates_seen:
            candidate = {"content": {"role": "model", "parts": parts}}
            merged["candidates"] = [{**candidate, "finishReason": finish} if finish else candidate]
        return merged

    def _chunk_error(self, chunk: dict[str, Any], response: UpstreamResponse) -> ReapiError:
        """Google's error object sent as a chunk: mapped as if it had been the answer, with its
        `code` as the HTTP status (a 200 was sent before the stream began)."""
        error = chunk.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
        answer = UpstreamResponse(status, response.headers, json.dumps(chunk).encode())
        return self.error_for(answer)

    def _image_part(self, candidate: dict[str, Any]) -> GeneratedFile | None:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            # Gemini 3 image models may show draft "thought" images before the final one.
            if not isinstance(part, dict) or part.get("thought"):
                continue
            inline = part.get("inlineData")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                content_type = str(inline.get("mimeType") or "image/png")
                encoded = inline["data"]
                data = b64decode(encoded, self.provider)
                return GeneratedFile(content_type, data=data, b64=encoded)
        return None

    def _blocked(self, response: UpstreamResponse, reason: str, what: str) -> ContentPolicyError:
        return ContentPolicyError(
            f"{self.provider} blocked {what} under its content policy",
            provider=self.provider,
            status=response.status,
            provider_code=_safe_code(reason),
        )

    # -- videos: Veo on the same key ---------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        return self._veo.submit_video(call)

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        return self._veo.poll_video(route, task_id)


def _usage(metadata: object) -> dict[str, int]:
    """Google's token counts in OpenAI's usage names."""
    if not isinstance(metadata, dict):
        return {}
    names = {
        "promptTokenCount": "input_tokens",
        "candidatesTokenCount": "output_tokens",
        "totalTokenCount": "total_tokens",
    }
    return {
        ours: metadata[theirs]
        for theirs, ours in names.items()
        if isinstance(metadata.get(theirs), int)
    }


def _png_size(data: bytes) -> str | None:
    """WxH from a PNG header: Gemini picks its own pixel grid for each ratio and tier."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return f"{width}x{height}"
