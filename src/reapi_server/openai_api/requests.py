"""Request bodies as OpenAI documents them (plus reapi's `aspect_ratio`/`resolution`/`seed`).

Unknown fields are ignored — `base_url`, `api_base` and the like can never redirect a request.
Each body turns into the core's loggable parameters and a sealed `Payload` at once.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reapi._params import ImageParams, VideoParams
from reapi._payload import File, Payload
from reapi.resources._inputs import image_request, video_request

from ..errors import GatewayError
from .bodies import FormFile, ParsedForm
from .validation import bounds_of

__all__ = [
    "ImageEditBody",
    "ImageEditForm",
    "ImageGenerationBody",
    "ImageRef",
    "VideoBody",
    "image_edit_from_form",
    "image_edit_from_json",
    "image_generation",
    "json_schema",
    "parse_model",
    "refuse_streaming",
    "video_from_form",
    "video_from_json",
]

Prompt = Field(min_length=1, max_length=32000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class _ImageOptions(_Body):
    model: str = "gpt-image-2"
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    response_format: Literal["url", "b64_json"] | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    user: str | None = None
    stream: bool | None = None

    def options(self) -> dict[str, Any]:
        skip = {"prompt", "model", "user", "stream", "image", "images", "mask", "partial_images"}
        return {k: v for k, v in self.model_dump().items() if v is not None and k not in skip}


class ImageGenerationBody(_ImageOptions):
    prompt: str = Prompt
    moderation: str | None = None
    seed: int | None = None
    style: str | None = None


class ImageEditForm(_ImageOptions):
    prompt: str = Prompt
    input_fidelity: str | None = None


class ImageRef(BaseModel):
    """An input image by reference: `{"image_url": an http(s) or data URL}` or
    `{"file_id": one of the caller's own outputs}`, exactly one of the two."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    image_url: str | None = Field(default=None, max_length=20 * 1024 * 1024)
    file_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageRef:
        if (self.image_url is None) == (self.file_id is None):
            raise ValueError("give exactly one of image_url and file_id")
        return self


class ImageEditBody(_ImageOptions):
    """The JSON form of images/edits: images by reference instead of uploads."""

    prompt: str = Prompt
    images: list[ImageRef] = Field(min_length=1, max_length=16)
    mask: ImageRef | None = None
    input_fidelity: str | None = None
    moderation: str | None = None
    partial_images: int | None = Field(default=None, ge=0, le=3)


class VideoBody(_Body):
    #: Required: OpenAI's default (`sora-2`) is not a model every gateway serves.
    model: str = Field(min_length=1, max_length=200)
    prompt: str | None = Field(default=None, min_length=1, max_length=32000)
    seconds: int | str | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    #: `{"image_url": "https://..." | "data:..."}` or `{"file_id": ...}`; uploads come as
    #: multipart instead.
    input_reference: ImageRef | None = None


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with nested models inlined: it goes into the OpenAPI document as
    is, where pydantic's `#/$defs/...` references would point nowhere."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def parse_model(model: type[_Body], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", *e["loc"]),
                    "type": e["type"],
                    "msg": e["msg"],
                    "ctx": {**e.get("ctx", {}), **bounds_of(model, e["loc"])},
                }
                for e in error.errors(include_input=False)
            ]
        ) from None


def refuse_streaming(stream: bool | None) -> None:
    if stream:
        raise GatewayError("streaming is not supported by this gateway", param="stream")


def image_generation(body: ImageGenerationBody) -> tuple[ImageParams, Payload]:
    refuse_streaming(body.stream)
    options = body.options()
    options.pop("style", None)
    return image_request(prompt=body.prompt, model=body.model, user=body.user, **options)


def _file(upload: FormFile) -> File:
    return File(upload.content, upload.filename, upload.content_type)


def _form_fields(form: ParsedForm) -> dict[str, str]:
    return {name: value for name, value in form.fields}


def image_edit_from_form(form: ParsedForm) -> tuple[ImageEditForm, ImageParams, Payload]:
    body = parse_model(ImageEditForm, _form_fields(form))
    refuse_streaming(body.stream)
    images = [_file(f) for name, f in form.files if name in ("image", "image[]")]
    masks = [_file(f) for name, f in form.files if name == "mask"]
    if not images:
        raise GatewayError(
            "image is required (one or more files)",
            param="image",
            code="missing_required_parameter",
        )
    params, payload = image_request(
        prompt=body.prompt,
        model=body.model,
        images=images,
        mask=masks[0] if masks else None,
        user=body.user,
        **body.options(),
    )
    return body, params, payload


def image_edit_from_json(
    body: ImageEditBody, images: list[File], mask: File | None
) -> tuple[ImageParams, Payload]:
    """A JSON edit whose references were already turned into files (see `references`)."""
    refuse_streaming(body.stream)
    return image_request(
        prompt=body.prompt,
        model=body.model,
        images=images,
        mask=mask,
        user=body.user,
        **body.options(),
    )


def _video_options(body: VideoBody) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "size": body.size,
            "aspect_ratio": body.aspect_ratio,
            "resolution": body.resolution,
            "seed": body.seed,
        }.items()
        if v is not None
    }


def video_from_json(body: VideoBody, reference: File | None) -> tuple[VideoParams, Payload]:
    """A JSON video request whose `input_reference` was already turned into a file."""
    return video_request(
        prompt=body.prompt,
        model=body.model,
        seconds=body.seconds,
        input_reference=reference,
        **_video_options(body),
    )


def video_from_form(form: ParsedForm) -> tuple[VideoBody, VideoParams, Payload]:
    fields: dict[str, Any] = _form_fields(form)
    reference_text = fields.pop("input_reference", None)
    body = parse_model(VideoBody, fields)
    uploads = [_file(f) for name, f in form.files if name == "input_reference"]
    reference: File | str | None = uploads[0] if uploads else None
    if reference is None and reference_text:
        if not reference_text.startswith(("https://", "http://", "data:")):
            raise GatewayError(
                "input_reference must be a file or an https URL", param="input_reference"
            )
        reference = reference_text
    params, payload = video_request(
        prompt=body.prompt,
        model=body.model,
        seconds=body.seconds,
        input_reference=reference,
        **_video_options(body),
    )
    return body, params, payload
