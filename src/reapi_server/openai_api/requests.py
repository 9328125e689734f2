"""Request bodies as OpenAI documents them (plus reapi's `aspect_ratio`/`resolution`/`seed`).

Unknown fields are ignored — `base_url`, `api_base` and the like can never redirect a request.

Each endpoint's body is read by one function (`image_generation_request`, `image_edit_request`,
`video_request_of`) that returns only the core's loggable parameters and a sealed `Payload`. The
raw bytes, the parsed JSON or form and the body model are that function's locals: once it has
returned, nothing but the Payload holds request content, for the whole upstream call. The models'
reprs hide every value. `data:` URLs are decoded here (their bytes are in the body already);
http(s) URLs and file ids stay `Reference`s, loaded only after the checks and the credit hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from reapi.core import (
    IMAGE_TYPES,
    MEDIA_TYPES,
    File,
    HiddenValues,
    ImageParams,
    Payload,
    UrlPolicy,
    VideoParams,
    decode_data_url,
    detached,
    excerpt,
    image_request,
    sniff_media_type,
    video_request,
)

from ..errors import GatewayError
from ..json_api.bodies import (
    FormFile,
    ParsedForm,
    is_json_type,
    read_form,
    read_json,
    unsupported_content_type,
)
from ..json_api.validation import bounds_of
from ..references.reference import PNG_ONLY, Reference

__all__ = [
    "ImageEditBody",
    "ImageEditForm",
    "ImageGenerationBody",
    "ImageRef",
    "VideoBody",
    "VideoForm",
    "VideoRequest",
    "image_edit_request",
    "image_generation_request",
    "json_schema",
    "parse_model",
    "video_request_of",
]

Prompt = Field(min_length=1, max_length=32000)


def _not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads `true` as 1; a boolean is never a count or a duration here.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: A form's integer field (a form's fields are strings): ASCII digits, never a boolean.
WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]


#: A JSON integer field (OpenAI's schema, or reapi's for `seed`, types it as one): a number,
#: not "2" (nor a boolean, nor 2.0), as OpenAI refuses a value of the wrong JSON type.
StrictWholeNumber = Annotated[int, Strict()]

#: Each integer's bounds, the same in JSON and in a form. A seed fits a signed 64-bit integer,
#: the widest any host's API takes (a form's digits could spell any size, and a JSON number
#: past 64 bits is not read at all).
_N_RANGE = Field(default=None, ge=1, le=10)
_COMPRESSION_RANGE = Field(default=None, ge=0, le=100)
_PARTIAL_IMAGES_RANGE = Field(default=None, ge=0, le=3)
_SEED_RANGE = Field(default=None, ge=-(2**63), le=2**63 - 1)


def _a_spelled_boolean(value: Any) -> Any:
    # A form's fields are strings: "true" and "false" (what the openai client sends for a
    # boolean); pydantic's lax mode would also take "yes", "on" and "1", which OpenAI refuses.
    if value in ("true", "false"):
        return value == "true"
    raise PydanticCustomError("bool_type", "Input should be a valid boolean")


#: A form's boolean field: "true" or "false", nothing else. (JSON's is a `StrictBool`.)
FormFlag = Annotated[bool, BeforeValidator(_a_spelled_boolean)]


class _Body(HiddenValues):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


_NOT_OPTIONS = frozenset(
    {"prompt", "model", "user", "stream", "image", "images", "mask", "partial_images"}
)


class _ImageOptions(_Body):
    model: str = "gpt-image-2"
    #: In JSON, the integers and the boolean are of JSON's types, as OpenAI's schema has them
    #: ("2" and "true" are refused, as OpenAI does); a form spells them (`ImageEditForm`).
    n: StrictWholeNumber | None = _N_RANGE
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: StrictWholeNumber | None = _COMPRESSION_RANGE
    response_format: Literal["url", "b64_json"] | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    user: str | None = None
    #: Server-sent events instead of one JSON answer (`openai_api.image_stream`).
    stream: StrictBool | None = None
    partial_images: StrictWholeNumber | None = _PARTIAL_IMAGES_RANGE

    def options(self) -> dict[str, Any]:
        # The fields' values as validated (no dump: the ones that could nest are skipped).
        return {k: v for k, v in vars(self).items() if v is not None and k not in _NOT_OPTIONS}


class ImageGenerationBody(_ImageOptions):
    prompt: str = Prompt
    moderation: str | None = None
    seed: StrictWholeNumber | None = _SEED_RANGE
    style: str | None = None


class ImageEditForm(_ImageOptions):
    prompt: str = Prompt
    input_fidelity: str | None = None
    #: A form's fields are strings: its numbers and boolean are spelled ("2", "true").
    n: WholeNumber | None = _N_RANGE
    output_compression: WholeNumber | None = _COMPRESSION_RANGE
    stream: FormFlag | None = None
    partial_images: WholeNumber | None = _PARTIAL_IMAGES_RANGE


class ImageRef(HiddenValues):
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


class VideoBody(_Body):
    #: Required: OpenAI's default (`sora-2`) is not a model every gateway serves.
    model: str = Field(min_length=1, max_length=200)
    prompt: str | None = Field(default=None, min_length=1, max_length=32000)
    #: OpenAI writes durations as strings ("8"); the core reads them (ASCII digits only).
    seconds: Annotated[int | str | None, BeforeValidator(_not_a_boolean)] = None
    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    #: reapi's extension, a JSON integer ("7" is refused); a form spells it (`VideoForm`).
    seed: StrictWholeNumber | None = _SEED_RANGE
    #: `{"image_url": "https://..." | "data:..."}` or `{"file_id": ...}`; uploads come as
    #: multipart instead.
    input_reference: ImageRef | None = None
    #: reapi's extension: where the finished video is POSTed (Standard Webhooks, signed with
    #: the key's secret); without it, the key's default, if any.
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)


class VideoForm(VideoBody):
    """The multipart form of videos: its fields are strings, `seed` spelled in digits."""

    seed: WholeNumber | None = _SEED_RANGE


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


# Limits the schema states, never values the caller sent: what a message may quote of `ctx`.
_LIMITS = ("ge", "gt", "le", "lt", "min_length", "max_length", "expected")


def _invalid(model: type[BaseModel]) -> Callable[[BaseException], RequestValidationError]:
    """The refusal of a body: locations (an excerpt of each), kinds and the schema's limits (the
    whole range of a field, not only the end crossed), never the inputs, and never the pydantic
    error itself, which holds them."""

    def refusal(error: BaseException) -> RequestValidationError:
        assert isinstance(error, ValidationError)
        return RequestValidationError(
            [
                {
                    "loc": ("body", *(p if isinstance(p, int) else excerpt(p) for p in e["loc"])),
                    "type": e["type"],
                    "msg": e["msg"],
                    "ctx": {
                        **{k: v for k, v in e.get("ctx", {}).items() if k in _LIMITS},
                        **bounds_of(model, e["loc"]),
                    },
                }
                for e in error.errors(include_input=False, include_url=False)
            ]
        )

    return refusal


def parse_model(model: type[_Body], data: Any) -> Any:
    # (`translated` written out: its closures, and `_invalid`'s, cost more than a small body's
    # checks; the refusal is made only for a body that fails them)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        refused = _invalid(model)(error)
    raise detached(refused)


def _image_options(body: _ImageOptions) -> dict[str, Any]:
    """`body`'s options, plus the partial images a streamed request asks for (0 by default):
    set, `ImageParams.partial_images` is what marks the request as streamed."""
    options = body.options()
    if body.stream:
        options["partial_images"] = body.partial_images or 0
    return options


# -- images/generations --------------------------------------------------------------------------
async def image_generation_request(request: Request, limit: int) -> tuple[ImageParams, Payload]:
    body = parse_model(ImageGenerationBody, await read_json(request, limit))
    options = _image_options(body)
    options.pop("style", None)
    return image_request(prompt=body.prompt, model=body.model, user=body.user, **options)


# -- images/edits --------------------------------------------------------------------------------
async def image_edit_request(
    request: Request, limit: int, policy: UrlPolicy
) -> tuple[ImageParams, Payload]:
    """Uploads (multipart), or images and mask by reference (JSON)."""
    content_type = request.headers.get("content-type", "").lower()  # case-insensitive (RFC 9110)
    if content_type.startswith("multipart/form-data"):
        return _edit_from_form(await read_form(request, limit))
    if is_json_type(content_type):
        return _edit_from_json(parse_model(ImageEditBody, await read_json(request, limit)), policy)
    raise GatewayError(
        "send images/edits as multipart/form-data (files) or application/json "
        "(images by image_url or file_id)",
        param="image",
    )


def _file(upload: FormFile) -> File:
    return File(upload.content, upload.filename, upload.content_type)


def _form_fields(form: ParsedForm) -> dict[str, str]:
    return {name: value for name, value in form.fields}


def _edit_from_form(form: ParsedForm) -> tuple[ImageParams, Payload]:
    body = parse_model(ImageEditForm, _form_fields(form))
    images = [_file(f) for name, f in form.files if name in ("image", "image[]")]
    masks = [_file(f) for name, f in form.files if name == "mask"]
    if not images:
        raise GatewayError(
            "image is required (one or more files)",
            param="image",
            code="missing_required_parameter",
        )
    return image_request(
        prompt=body.prompt,
        model=body.model,
        images=images,
        mask=masks[0] if masks else None,
        user=body.user,
        **_image_options(body),
    )


def _by_reference(
    ref: ImageRef, param: str, accept: frozenset[str], policy: UrlPolicy
) -> File | Reference:
    """A `data:` URL decoded now; an http(s) URL or a file id kept for later."""
    if ref.file_id is not None:
        return Reference(f"{param}.file_id", accept, file_id=ref.file_id)
    url, param = ref.image_url or "", f"{param}.image_url"
    if url[:5].lower() == "data:":
        return decode_data_url(url, accept, param, policy)
    return Reference(param, accept, url=url)


def _edit_from_json(body: ImageEditBody, policy: UrlPolicy) -> tuple[ImageParams, Payload]:
    images = tuple(
        _by_reference(ref, f"images[{i}]", IMAGE_TYPES, policy) for i, ref in enumerate(body.images)
    )
    mask = _by_reference(body.mask, "mask", PNG_ONLY, policy) if body.mask else None
    params, payload = image_request(
        prompt=body.prompt,
        model=body.model,
        user=body.user,
        **_image_options(body),
    )
    return params, payload.with_fields(images=images, mask=mask)


# -- videos --------------------------------------------------------------------------------------
#: A video request: the core's parameters, the sealed body, and the webhook URL it names.
VideoRequest = tuple[VideoParams, Payload, str | None]


async def video_request_of(request: Request, limit: int, policy: UrlPolicy) -> VideoRequest:
    """JSON (`input_reference` by reference) or multipart (an upload, or a URL in the field)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return _video_from_form(await read_form(request, limit), policy)
    if content_type and not is_json_type(content_type):  # no type at all is read as JSON
        raise unsupported_content_type(
            content_type,
            "JSON sent with `Content-Type: application/json` (input_reference by image_url or"
            " file_id) or multipart/form-data (an upload)",
        )
    return _video_from_json(parse_model(VideoBody, await read_json(request, limit)), policy)


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


def _video(body: VideoBody, reference: File | Reference | None) -> VideoRequest:
    params, payload = video_request(
        prompt=body.prompt, model=body.model, seconds=body.seconds, **_video_options(body)
    )
    return params, payload.with_fields(input_reference=reference), body.webhook_url


def _video_from_json(body: VideoBody, policy: UrlPolicy) -> VideoRequest:
    ref = body.input_reference
    reference = _by_reference(ref, "input_reference", MEDIA_TYPES, policy) if ref else None
    return _video(body, reference)


#: What an uploaded `input_reference` may be (`MEDIA_TYPES`), in words.
_REFERENCE_KINDS = "an image (PNG, JPEG or WebP) or a video (MP4, QuickTime or WebM)"


def _reference_upload(upload: FormFile) -> File:
    """An uploaded `input_reference` as the type its bytes are: an upstream is told that, not
    the part's label (which may say `text/html` or `application/octet-stream`), as a reference
    by URL or file id is; bytes of no type a video model takes are refused here."""
    content_type = sniff_media_type(upload.content)
    if content_type is None or content_type not in MEDIA_TYPES:
        raise GatewayError(
            f"input_reference must be {_REFERENCE_KINDS}",
            param="input_reference",
            code="invalid_file",
        )
    return File(upload.content, upload.filename, content_type)


def _video_from_form(form: ParsedForm, policy: UrlPolicy) -> VideoRequest:
    fields: dict[str, Any] = _form_fields(form)
    text = fields.pop("input_reference", None)
    body = parse_model(VideoForm, fields)
    uploads = [_reference_upload(f) for name, f in form.files if name == "input_reference"]
    reference: File | Reference | None = uploads[0] if uploads else None
    if reference is None and text:
        if text[:5].lower() == "data:":
            reference = decode_data_url(text, MEDIA_TYPES, "input_reference", policy)
        elif text.startswith(("https://", "http://")):
            reference = Reference("input_reference", MEDIA_TYPES, url=text)
        else:
            raise GatewayError(
                "input_reference must be a file or an https URL", param="input_reference"
            )
    return _video(body, reference)
