"""`Reference`: an input a request names (a caller's URL, one of its own stored outputs) and that
becomes a file only once the request has passed every check and its credit is held."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PNG_ONLY", "Reference"]

#: What a mask may be.
PNG_ONLY = frozenset({"image/png"})


@dataclass(frozen=True, slots=True)
class Reference:
    """Held in the request's sealed `Payload` in place of the file it names. Its repr says
    which parameter it fills, never the URL (a query may be a signature, a path the caller's
    data) nor the file id (a bearer capability)."""

    #: The parameter an error names: `images[0].image_url`, `mask.file_id`, `input_reference`.
    param: str
    #: The media types the file may be (its first bytes decide).
    accept: frozenset[str]
    url: str | None = field(default=None, repr=False)
    file_id: str | None = field(default=None, repr=False)
