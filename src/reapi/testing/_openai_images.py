"""OpenAI Images (PROVIDERS.md §1): request checks, field by field, and the ImagesResponse.

Images are real PNG/JPEG/WebP files in the requested format and aspect ratio, at most 64 pixels
on the long edge: the point is valid bytes, not big ones.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ._jpeg import jpeg_bytes
from ._media import png_bytes, webp_bytes
from ._messages import FormPart, SimResponse, json_answer
from ._openai_errors import Fields, OpenAIError

__all__ = [
    "IMAGE_MODELS",
    "ImageRequest",
    "check_edit",
    "check_generation",
    "image_answer",
    "image_file",
]

_FIXED_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
_DALLE_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
_GPT_MODELS = {
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "chatgpt-image-latest",
}
_MODELS = _GPT_MODELS | set(_DALLE_SIZES)
IMAGE_MODELS = frozenset(_MODELS)
_PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
_COMMON = {"prompt", "model", "n", "size", "quality", "response_format", "user"}
_GPT_ONLY = {"background", "output_format", "output_compression", "stream", "partial_images"}
_GENERATION_PARAMS = _COMMON | _GPT_ONLY | {"moderation", "style", "safety_identifier"}
_EDIT_PARAMS = _COMMON | _GPT_ONLY | {"input_fidelity", "safety_identifier"}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")
#: Output tokens of a 1024x1024 image per quality, roughly OpenAI's published figures.
_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "standard": 1056, "hd": 4160}


@dataclass(frozen=True, slots=True)
class ImageRequest:
    model: str
    prompt: str
    n: int
    size: str
    quality: str
    background: str
    output_format: str
    response_format: str
    partial_images: int = 0
    input_images: int = 0


def _gpt_size_ok(model: str, size: str) -> bool:
    """gpt-image-2: any WxH, sides divisible by 16, ratio within 1:3..3:1, at most 3840x2160."""
    if size in _FIXED_SIZES:
        return True
    width, sep, height = size.partition("x")
    if not (model.startswith("gpt-image-2") and sep and width.isdigit() and height.isdigit()):
        return False
    long_edge, short_edge = max(int(width), int(height)), min(int(width), int(height))
    return (
        int(width) % 16 == 0
        and int(height) % 16 == 0
        and 0 < short_edge <= 2160
        and long_edge <= 3840
        and long_edge <= 3 * short_edge
    )


def _check_common(fields: Fields, *, edit: bool) -> ImageRequest:
    model = fields.text("model") or ("gpt-image-1.5" if edit else "dall-e-2")
    if model not in _MODELS:
        raise OpenAIError.invalid(
            "model",
            f"Invalid value: '{model}'. Supported values are: "
            + ", ".join(f"'{m}'" for m in sorted(_MODELS))
            + ".",
        )
    gpt = model in _GPT_MODELS
    fields.reject_unknown(_EDIT_PARAMS if edit else _GENERATION_PARAMS)
    for name in _GPT_ONLY if not gpt else ():
        if fields.given(name):
            raise OpenAIError.unsupported(name, model)
    prompt = fields.required_text("prompt")
    limit = _PROMPT_LIMITS.get(model, 32000)
    if len(prompt) > limit:  # quotes the prompt, as upstream 400s for prompts may
        raise OpenAIError.invalid(
            "prompt",
            f"Invalid 'prompt': string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(prompt)} instead: '{prompt[:200]}...'",
        )
    n = fields.integer("n", 1, 1 if model == "dall-e-3" else 10, 1)
    size = fields.text("size") or ("auto" if gpt else "1024x1024")
    if not (_gpt_size_ok(model, size) if gpt else size in _DALLE_SIZES[model]):
        supported = ", ".join(f"'{s}'" for s in _size_examples(model))
        raise OpenAIError.invalid(
            "size", f"Invalid value: '{size}'. Supported values are: {supported}."
        )
    if gpt:
        qualities = {"auto", "low", "medium", "high"} | ({"standard"} if edit else set())
    else:
        qualities = {"auto", "standard", "hd"} if model == "dall-e-3" else {"auto", "standard"}
    quality = fields.choice("quality", qualities, "auto")
    output_format = fields.choice("output_format", ("png", "jpeg", "webp"), "png")
    background = fields.choice("background", ("transparent", "opaque", "auto"), "auto")
    if background == "transparent" and (model.startswith("gpt-image-2") or output_format == "jpeg"):
        raise OpenAIError.invalid(
            "background",
            f"Transparent background is not supported for model '{model}' "
            f"with output format '{output_format}'.",
        )
    fields.integer("output_compression", 0, 100, 100)
    partial_images = fields.integer("partial_images", 0, 3, 0)
    fields.text("user")
    fields.text("safety_identifier")
    if fields.given("response_format") and gpt:
        raise OpenAIError.unsupported("response_format", model)
    response_format = fields.choice("response_format", ("url", "b64_json"), "url")
    return ImageRequest(
        model=model,
        prompt=prompt,
        n=n,
        size=size,
        quality=quality,
        background=background,
        output_format=output_format,
        response_format="b64_json" if gpt else response_format,
        partial_images=partial_images,
    )


def _size_examples(model: str) -> Sequence[str]:
    if model in _DALLE_SIZES:
        return _DALLE_SIZES[model]
    if model.startswith("gpt-image-2"):
        return [*_FIXED_SIZES, "WIDTHxHEIGHT (multiples of 16, up to 3840x2160)"]
    return _FIXED_SIZES


def check_generation(body: bytes) -> tuple[ImageRequest, bool]:
    """The checked request and whether it asked for a stream."""
    try:
        values = json.loads(body)
    except ValueError:
        raise OpenAIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
        ) from None
    if not isinstance(values, dict):
        raise OpenAIError.invalid("body", "The request body must be a JSON object.")
    fields = Fields(values, form=False)
    request = _check_common(fields, edit=False)
    fields.choice("moderation", ("low", "auto"), "auto")
    if request.model == "dall-e-3":
        fields.choice("style", ("vivid", "natural"), "vivid")
    elif fields.given("style"):
        raise OpenAIError.unsupported("style", request.model)
    return request, fields.flag("stream")


def check_edit(parts: Sequence[FormPart]) -> tuple[ImageRequest, bool]:
    """Multipart edits: `image` or repeated `image[]` files (<= 16), an optional PNG `mask`."""
    texts: dict[str, object] = {}
    files: dict[str, list[bytes]] = {}
    for part in parts:
        if part.filename is not None:
            files.setdefault(part.name, []).append(part.data)
        else:
            texts[part.name] = part.text
    fields = Fields(texts, form=True)
    images = files.pop("image", []) + files.pop("image[]", [])
    masks = files.pop("mask", [])
    if files:
        name = next(iter(files))
        raise OpenAIError(
            400, f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name
        )
    request = _check_common(fields, edit=True)
    if not images:
        raise OpenAIError(
            400,
            "Missing required parameter: 'image'.",
            code="missing_required_parameter",
            param="image",
        )
    most = 1 if request.model.startswith("dall-e") else 16
    if len(images) > most:
        raise OpenAIError.invalid("image", f"Expected at most {most} images, got {len(images)}.")
    for image in images:
        if not image.startswith(_IMAGE_MAGIC):
            raise OpenAIError.invalid(
                "image",
                "Invalid image file or mode for image 1, please check your image file. "
                "Supported formats are 'png', 'webp' and 'jpeg'.",
            )
    if len(masks) > 1 or any(not m.startswith(_IMAGE_MAGIC[0]) for m in masks):
        raise OpenAIError.invalid("mask", "Invalid mask: expected one PNG file.")
    fields.choice("input_fidelity", ("high", "low"), "low")  # the simulated edit ignores it
    if fields.given("input_fidelity") and request.model in ("gpt-image-1-mini", "dall-e-2"):
        raise OpenAIError.unsupported("input_fidelity", request.model)
    return replace(request, input_images=len(images)), fields.flag("stream")


def _pixels(size: str) -> tuple[int, int]:
    """The requested shape, scaled down to at most 64 pixels on the long edge."""
    width, _, height = ("1024x1024" if size == "auto" else size).partition("x")
    w, h = int(width), int(height)
    scale = max(w, h) / 64
    return max(round(w / scale), 1), max(round(h / scale), 1)


def image_file(output_format: str, size: str) -> bytes:
    width, height = _pixels(size)
    if output_format == "jpeg":
        return jpeg_bytes(width, height)
    if output_format == "webp":
        return webp_bytes(width, height)
    return png_bytes(width, height)


def _usage(request: ImageRequest) -> dict[str, Any]:
    width, _, height = ("1024x1024" if request.size == "auto" else request.size).partition("x")
    megapixels = int(width) * int(height) / (1024 * 1024)
    per_image = int(_TOKENS_PER_MEGAPIXEL.get(request.quality, 1056) * megapixels)
    text_tokens = max(len(request.prompt) // 4, 1)
    image_tokens = 65 * request.input_images
    output = per_image * request.n
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text_tokens + image_tokens + output,
    }


def _outcome(request: ImageRequest) -> dict[str, str]:
    """What a GPT image model reports it made: `auto` values resolved."""
    return {
        "background": "transparent" if request.background == "transparent" else "opaque",
        "output_format": request.output_format,
        "quality": "medium" if request.quality == "auto" else request.quality,
        "size": "1024x1024" if request.size == "auto" else request.size,
    }


def image_answer(
    request: ImageRequest, origin: str, *, stream: bool = False, fails: bool = False
) -> SimResponse:
    """The answer; `fails`: a streamed generation fails after its partial images (the stream
    ends with an error event)."""
    created = int(time.time())
    if request.model.startswith("dall-e"):
        size = request.size
        if request.response_format == "url":
            url = f"{origin}/dalle/{size}.png"
            data = [{"url": url, "revised_prompt": _revised(request)} for _ in range(request.n)]
        else:
            b64 = base64.b64encode(image_file("png", size)).decode()
            data = [{"b64_json": b64, "revised_prompt": _revised(request)}] * request.n
        return json_answer(200, {"created": created, "data": data})
    outcome = _outcome(request)
    b64 = base64.b64encode(image_file(request.output_format, outcome["size"])).decode()
    if stream:
        return _event_stream(request, created, outcome, b64, fails=fails)
    return json_answer(
        200,
        {
            "created": created,
            **outcome,
            "data": [{"b64_json": b64} for _ in range(request.n)],
            "usage": _usage(request),
        },
    )


def _revised(request: ImageRequest) -> str | None:
    # dall-e-3 rewrites the prompt and says so, quoting it.
    return f"A detailed rendering of: {request.prompt}" if request.model == "dall-e-3" else None


def _draft(output_format: str, size: str) -> str:
    """A partial image: the same format, but visibly not the final image."""
    width, height = _pixels(size)
    if output_format == "jpeg":
        data = jpeg_bytes(max(width // 2, 1), max(height // 2, 1))
    elif output_format == "webp":
        data = webp_bytes(width, height, rgb=(200, 200, 200))
    else:
        data = png_bytes(width, height, rgb=(200, 200, 200))
    return base64.b64encode(data).decode()


def _event_stream(
    request: ImageRequest, created: int, outcome: Mapping[str, str], b64: str, *, fails: bool
) -> SimResponse:
    """The SSE answer to `stream: true`: `partial_images` partial images (drafts), then the
    final image with the usage; or, when the generation fails, an `error` event instead."""
    kind = "image_edit" if request.input_images else "image_generation"
    draft = _draft(request.output_format, outcome["size"])
    events: list[dict[str, Any]] = [
        {
            "type": f"{kind}.partial_image",
            "b64_json": draft,
            "created_at": created,
            "partial_image_index": index,
            **outcome,
        }
        for index in range(request.partial_images)
    ]
    if fails:
        error = {
            "type": "server_error",
            "code": None,
            "message": "The server had an error while processing your request. Sorry about that!",
            "param": None,
        }
        events.append({"type": "error", "error": error})
    else:
        events.append(
            {
                "type": f"{kind}.completed",
                "b64_json": b64,
                "created_at": created,
                **outcome,
                "usage": _usage(request),
            }
        )
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return SimResponse(200, {"content-type": "text/event-stream"}, body.encode())
