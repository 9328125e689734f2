"""Reprs that say which fields a model has and how large each is, never what they hold.

A request body model (the gateway parses one per request) holds the prompt, `user` and references;
a generated image holds its bytes and the upstream's revised prompt. A repr ends up in logs,
tracebacks and debuggers, so such models show `prompt=<12 chars>`, never the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

__all__ = ["HiddenValues", "hidden"]


class _Shown:
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


def hidden(value: Any) -> Any:
    """What a repr may show of `value`: its kind and size."""
    if value is None:
        return None
    if isinstance(value, str):
        return _Shown(f"<{len(value)} chars>")
    if isinstance(value, bytes | bytearray):
        return _Shown(f"<{len(value)} bytes>")
    if isinstance(value, list | tuple | dict | set | frozenset):
        return _Shown(f"<{len(value)} items>")
    if isinstance(value, BaseModel):
        return value  # its own repr decides
    return _Shown(f"<{type(value).__name__}>")


class HiddenValues(BaseModel):
    """Mix into a pydantic model: `repr`, `str` and rich/devtools output hide every value."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, hidden(value)
