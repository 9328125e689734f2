"""Input schemas for the generic-host simulators (fal, Replicate): one check per field.

Each hosted model documents its input fields; a simulator validates the fields reapi's mappers
send against them, refuses unknown ones (a typo in a mapper must fail loudly in tests) and names
the first problem. Problems carry the field name and a kind, never the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Problem",
    "Schema",
    "boolean",
    "image_size",
    "integer",
    "number",
    "one_of",
    "text",
    "url",
    "urls",
]

Check = Callable[[Any], bool]
Output = Literal["image", "images", "video"]


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    kind: Literal["missing", "unknown", "invalid"]


@dataclass(frozen=True, slots=True)
class Schema:
    output: Output
    fields: Mapping[str, Check]
    required: frozenset[str] = frozenset({"prompt"})
    #: A model that generates several images reads its count from this field.
    count_field: str | None = None

    def problem(self, given: Mapping[str, Any]) -> Problem | None:
        for name in sorted(self.required):
            if name not in given:
                return Problem(name, "missing")
        for name, value in given.items():
            check = self.fields.get(name)
            if check is None:
                return Problem(name, "unknown")
            if not check(value):
                return Problem(name, "invalid")
        return None

    def with_fields(self, required: frozenset[str] | None = None, **more: Check) -> Schema:
        return Schema(
            self.output,
            {**self.fields, **more},
            self.required if required is None else required,
            self.count_field,
        )

    def without(self, *names: str) -> Schema:
        kept = {k: v for k, v in self.fields.items() if k not in names}
        return Schema(self.output, kept, self.required - set(names), self.count_field)


def one_of(*values: object) -> Check:
    # `True == 1` in Python: compare types too, so a bool never passes for an int.
    return lambda v: any(type(v) is type(x) and v == x for x in values)


def integer(low: int, high: int) -> Check:
    return lambda v: type(v) is int and low <= v <= high


def number(low: float, high: float) -> Check:
    return lambda v: type(v) in (int, float) and low <= v <= high


def boolean(v: object) -> bool:
    return type(v) is bool


def text(max_length: int = 32000) -> Check:
    return lambda v: isinstance(v, str) and 0 < len(v) <= max_length


def url(v: object) -> bool:
    return isinstance(v, str) and v.startswith(("https://", "http://", "data:"))


def urls(low: int, high: int) -> Check:
    return lambda v: isinstance(v, list) and low <= len(v) <= high and all(url(u) for u in v)


def image_size(
    presets: tuple[str, ...], min_pixels: int, max_pixels: int, multiple_of: int = 1
) -> Check:
    """A named preset or `{"width", "height"}` within a pixel budget."""

    def check(v: object) -> bool:
        if isinstance(v, str):
            return v in presets
        if not isinstance(v, dict) or set(v) != {"width", "height"}:
            return False
        width, height = v["width"], v["height"]
        return (
            type(width) is int
            and type(height) is int
            and width % multiple_of == 0
            and height % multiple_of == 0
            and min_pixels <= width * height <= max_pixels
        )

    return check
