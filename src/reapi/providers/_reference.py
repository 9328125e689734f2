"""Reference images for upstreams that take them as a URL string (data: or http(s)).

Ark (Seedream, Seedance) and Vidu both accept an image either as a public URL or as a
`data:image/...;base64,` URL in a JSON body. A URL the user gave is passed on as is: reapi does
not fetch it, the upstream does. A file the gateway fetched from a caller's URL goes inline,
unless it is over the upstream's inline limit: then its (vetted) source URL goes instead.
"""

from __future__ import annotations

from .._exceptions import InvalidRequestError
from .._payload import File
from ._util import as_data_url, sniff_image_type

__all__ = ["image_url"]


def image_url(reference: File | str, *, param: str, max_bytes: int | None = None) -> str:
    """A reference image as the URL string the upstream reads; refuse what it cannot take."""
    if isinstance(reference, str):
        if reference.startswith(("https://", "http://", "data:image/")):
            return reference
        raise InvalidRequestError(
            f"{param} must be an image file, an http(s) URL or a data:image URL",
            param=param,
            code="invalid_image",
        )
    content_type = sniff_image_type(reference.content)
    if content_type is None:
        raise InvalidRequestError(
            f"{param} must be a PNG, JPEG or WebP image for this model",
            param=param,
            code="invalid_image",
        )
    if max_bytes is not None and len(reference.content) > max_bytes:
        if reference.source_url:  # fetched from a caller's URL (vetted): the upstream may too
            return reference.source_url
        raise InvalidRequestError(
            f"{param} is larger than this provider takes inline ({max_bytes // 1_000_000} MB); "
            "pass an https URL instead",
            param=param,
            code="file_too_large",
        )
    return as_data_url(File(reference.content, reference.filename, content_type))
