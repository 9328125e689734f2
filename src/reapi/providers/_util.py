"""Small helpers adapters share: base64, data URLs, content types, idempotency headers."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .._answer_codecs import b64decode_strict
from .._exceptions import APIResponseError
from .._media import IMAGE_TYPES, sniff_media_type
from .._payload import File

__all__ = [
    "as_data_url",
    "b64decode",
    "content_type_for",
    "drop_none",
    "sniff_image_type",
]

_FORMAT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}


def content_type_for(output_format: str | None, default: str = "image/png") -> str:
    return _FORMAT_TYPES.get((output_format or "").lower(), default)


def sniff_image_type(data: bytes) -> str | None:
    """PNG, JPEG or WebP, from the first bytes; None for anything else (a GIF included)."""
    content_type = sniff_media_type(data)
    return content_type if content_type in IMAGE_TYPES else None


def b64decode(value: str, provider: str) -> bytes:
    """Strict: only the base64 alphabet, padded right (`base64.b64decode(validate=True)` accepts
    the same, checking it with a regular expression first, at a third more CPU); by pybase64
    when installed (`_answer_codecs`)."""
    try:  # (the error raised after the `except`: nothing of the original chained)
        return b64decode_strict(value)
    except (binascii.Error, ValueError):
        pass
    raise APIResponseError(
        "the provider returned image data that is not valid base64", provider=provider
    )


def as_data_url(file: File) -> str:
    return f"data:{file.content_type};base64,{base64.b64encode(file.content).decode()}"


def drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
