"""Turn the arguments of the public methods into parameters (loggable) and a Payload (sealed)."""

from __future__ import annotations

import dataclasses
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, TypeAlias

from .._exceptions import InvalidRequestError
from .._media import IMAGE_TYPES
from .._numbers import whole_number
from .._params import ImageParams, VideoParams
from .._payload import File, Payload
from ..providers._util import sniff_image_type

__all__ = ["FileInput", "image_request", "to_file", "video_request"]

#: A file argument: bytes, a path, an open binary file, (filename, bytes[, content type]) or File.
FileInput: TypeAlias = (
    bytes | str | Path | IO[bytes] | tuple[str, bytes] | tuple[str, bytes, str] | File
)


def to_file(value: FileInput, param: str) -> File:
    if isinstance(value, File):
        return value
    if isinstance(value, bytes):
        name, content = param, value
    elif isinstance(value, str | Path):
        path = Path(value)
        name, content = path.name, path.read_bytes()
    elif isinstance(value, tuple):
        name, content = value[0], value[1]
        if len(value) == 3:
            return File(content, name, value[2])
    else:
        content = value.read()
        name = Path(str(getattr(value, "name", param))).name
    content_type = (
        sniff_image_type(content) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
    return File(content, name, content_type)


#: Options that are whole numbers: held to `whole_number` (no booleans, ASCII digits only).
_WHOLE_NUMBERS = ("output_compression", "seed")


def _whole_numbers(options: dict[str, Any]) -> dict[str, Any]:
    return {
        name: whole_number(value, name) if name in _WHOLE_NUMBERS and value is not None else value
        for name, value in options.items()
    }


def _prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError(
            "prompt must be a non-empty string", param="prompt", code="missing_required_parameter"
        )
    if len(prompt) > 32000:
        raise InvalidRequestError(
            "prompt is longer than 32000 characters", param="prompt", code="string_above_max_length"
        )
    return prompt


_PNG = frozenset({"image/png"})


def _image(value: FileInput, param: str, accept: frozenset[str]) -> File:
    """`value` as a file of the type its bytes are: an upstream is told that, not the label
    it came with (a multipart part may say `text/html` or `application/octet-stream`)."""
    file = to_file(value, param)
    sniffed = sniff_image_type(file.content)
    if sniffed not in accept:
        kinds = "a PNG file" if accept == _PNG else "a PNG, JPEG or WebP file"
        raise InvalidRequestError(f"{param} must be {kinds}", param=param, code="invalid_image")
    if file.content_type == sniffed:
        return file
    return dataclasses.replace(file, content_type=sniffed)


def image_request(
    *,
    prompt: str,
    model: str,
    images: Sequence[FileInput] = (),
    mask: FileInput | None = None,
    user: str | None = None,
    **options: Any,
) -> tuple[ImageParams, Payload]:
    files = [_image(image, "image", IMAGE_TYPES) for image in images]
    mask_file = _image(mask, "mask", _PNG) if mask is not None else None
    n = options.pop("n", 1)
    params = ImageParams(
        model=model, n=1 if n is None else whole_number(n, "n"), **_whole_numbers(options)
    )
    payload = Payload(
        prompt=_prompt(prompt), images=tuple(files) or None, mask=mask_file, user=user
    )
    return params, payload


def video_request(
    *,
    prompt: str | None,
    model: str,
    seconds: int | str | None = None,
    input_reference: FileInput | None = None,
    **options: Any,
) -> tuple[VideoParams, Payload]:
    duration = whole_number(seconds, "seconds") if seconds is not None else None
    reference: File | str | None = None
    if isinstance(input_reference, str) and input_reference.startswith(
        ("http://", "https://", "data:")
    ):
        reference = input_reference
    elif input_reference is not None:
        reference = to_file(input_reference, "input_reference")
    params = VideoParams(model=model, seconds=duration, **_whole_numbers(options))
    # An empty prompt is allowed here: models driven by their input alone (enhancement) take
    # none, and the catalog check refuses it for every other model.
    text = _prompt(prompt) if prompt else None
    return params, Payload(prompt=text, input_reference=reference)
