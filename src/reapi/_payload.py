"""`Payload`: the only holder of request bodies (prompts, images, masks, `user`).

reapi promises zero retention of request bodies. The simplest way to keep that promise is to make
the body impossible to print, log, pickle or attach to an exception by accident: every field lives
inside a `Payload`, whose `repr`/`str` say how many fields it holds and never what. Pickling is
refused, so a body cannot end up in a cache, a queue or a crash dump. Adapters read the fields
through `reveal()` only while they build the outgoing upstream request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["File", "Payload", "input_sizes"]


@dataclass(frozen=True, slots=True)
class File:
    """An uploaded file (reference image, mask, video). Its repr never shows the bytes.

    `source_url` is set when reapi fetched the file from a caller's URL (after the SSRF checks):
    an upstream that reads inputs from URLs only may be handed that URL instead of the bytes."""

    content: bytes
    filename: str = "file"
    content_type: str = "application/octet-stream"
    source_url: str | None = None

    def __repr__(self) -> str:
        return f"File(<{len(self.content)} bytes, {self.content_type}>)"

    __str__ = __repr__


class Payload:
    """A sealed mapping of body fields. Copyable (the copy is sealed too); never picklable."""

    __slots__ = ("_fields",)
    _fields: dict[str, Any]

    def __init__(self, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        merged = dict(fields or {})
        merged.update(more)
        object.__setattr__(self, "_fields", {k: v for k, v in merged.items() if v is not None})

    # -- what may be said about a payload --------------------------------------------------
    def __repr__(self) -> str:
        return f"Payload(<{len(self._fields)} sealed fields>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def names(self) -> Iterator[str]:
        """Field names are metadata (which fields were sent), never content."""
        return iter(sorted(self._fields))

    # -- the only way in -----------------------------------------------------------------------
    def reveal(self) -> Mapping[str, Any]:
        """The fields, for the adapter that builds the upstream request. Never log the result."""
        return self._fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name, default)

    def with_fields(self, **changes: Any) -> Payload:
        return Payload({**self._fields, **changes})

    # -- what a payload refuses -----------------------------------------------------------------
    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Payload is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Payload cannot be pickled: request bodies are never stored")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("Payload cannot be pickled: request bodies are never stored")

    def __getstate__(self) -> NoReturn:
        raise TypeError("Payload cannot be pickled: request bodies are never stored")

    def __copy__(self) -> Payload:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Payload:
        return self

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def input_sizes(payload: Payload) -> tuple[list[int], int | None]:
    """The bytes of each input image and of the mask at hand (files; one by reference, not yet
    fetched, is left out): what the model's per-file limits are checked on (`check_image`, and
    `check_input_sizes` once references are fetched). Lengths are metadata, never content."""
    images = payload.get("images") or ()
    mask = payload.get("mask")
    sizes = [len(image.content) for image in images if isinstance(image, File)]
    return sizes, len(mask.content) if isinstance(mask, File) else None
