"""Stripe's request parameters: form encoding with brackets, read with Stripe's checks.

`metadata[top_up_id]=t1&line_items[0][price_data][unit_amount]=500&expand[]=invoice` decodes to
`{"metadata": {"top_up_id": "t1"}, "line_items": [{"price_data": {"unit_amount": "500"}}],
"expand": ["invoice"]}`. Every value arrives as text; `Params` parses numbers and booleans the
way Stripe does and names a bad parameter in Stripe's bracket notation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ._errors import StripeError, invalid, missing, unknown_parameter

__all__ = ["Params", "decode_form", "merge_metadata", "new_metadata"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
#: Hashes whose keys are the caller's own (digits included), never turned into lists.
_FREE_KEYS = frozenset({"metadata"})
METADATA_KEYS = 50
METADATA_KEY_LENGTH = 40
METADATA_VALUE_LENGTH = 500


def decode_form(raw: str) -> dict[str, Any]:
    """Nested parameters from a form-encoded body or query string; a repeated name: the last."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))] if match else [key]
        _insert(root, path, value, key)
    return _lists(root, free=False)  # type: ignore[no-any-return]


def _insert(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, segment in enumerate(path):
        name = segment if segment else str(len(node))  # `a[]`: the next index
        if depth == len(path) - 1:
            if isinstance(node.get(name), dict):
                raise invalid(f"Invalid parameter: {key} is both a value and a hash", param=key)
            node[name] = value
            return
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise invalid(f"Invalid parameter: {key} is both a value and a hash", param=key)
        node = child


def _lists(value: Any, *, free: bool) -> Any:
    """Hashes keyed 0, 1, 2... become lists (in index order), except the caller's own hashes."""
    if not isinstance(value, dict):
        return value
    items = {k: _lists(v, free=k in _FREE_KEYS) for k, v in value.items()}
    if not free and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class Params:
    """One level of parameters; `path` is its name in Stripe's notation (e.g. `line_items[0]`)."""

    def __init__(self, data: Mapping[str, Any] | None = None, path: str = "") -> None:
        self.data: Mapping[str, Any] = data or {}
        self.path = path

    def name(self, key: str | int) -> str:
        return f"{self.path}[{key}]" if self.path else str(key)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def only(self, allowed: Iterable[str]) -> Params:
        """Stripe refuses parameters it does not know; so does the simulator (a typo fails)."""
        known = set(allowed) | {"expand"}
        for key in self.data:
            if key not in known:
                raise unknown_parameter(self.name(key))
        return self

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Collection[str] | None = None,
        default: str | None = None,
    ) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return default
        if not isinstance(value, str):
            raise invalid(
                f"Invalid string: {self.name(key)} must be a string", param=self.name(key)
            )
        if choices is not None and value not in choices:
            allowed = ", ".join(sorted(choices))
            raise invalid(
                f"Invalid {self.name(key)}: must be one of {allowed}", param=self.name(key)
            )
        return value

    def required_text(self, key: str, *, choices: Collection[str] | None = None) -> str:
        value = self.text(key, required=True, choices=choices)
        assert value is not None
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        raw = self.text(key, required=required)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise StripeError(
                400,
                f"Invalid integer: {raw[:40]}",
                code="parameter_invalid_integer",
                param=self.name(key),
            ) from None
        if minimum is not None and value < minimum:
            raise StripeError(
                400,
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
                param=self.name(key),
            )
        return value

    def required_integer(self, key: str, *, minimum: int | None = None) -> int:
        value = self.integer(key, required=True, minimum=minimum)
        assert value is not None
        return value

    def boolean(self, key: str) -> bool | None:
        raw = self.text(key)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise invalid(f"Invalid boolean: {raw[:40]}", param=self.name(key))
        return raw == "true"

    def child(self, key: str) -> Params:
        """A nested hash (empty when absent)."""
        value = self.data.get(key)
        if value is None or value == "":
            return Params({}, self.name(key))
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self.name(key)} must be a hash", param=self.name(key))
        return Params(value, self.name(key))

    def children(self, key: str) -> list[Params]:
        """A list of hashes (empty when absent)."""
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid(f"Invalid array: {self.name(key)} must be an array of hashes")
        return [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f"Invalid array: {self.name(key)} must be an array of strings")
        return list(value)

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """The hash as sent (an empty value unsets its key on update); None when absent."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid(f"Invalid hash: {self.name(key)} must be a hash of strings")
        if len(value) > METADATA_KEYS:
            raise invalid(
                f"Invalid {self.name(key)}: at most {METADATA_KEYS} keys", param=self.name(key)
            )
        for name, text in value.items():
            if len(name) > METADATA_KEY_LENGTH or len(text) > METADATA_VALUE_LENGTH:
                raise invalid(
                    f"Invalid {self.name(key)}: keys of at most {METADATA_KEY_LENGTH} and values"
                    f" of at most {METADATA_VALUE_LENGTH} characters",
                    param=self.name(key),
                )
        return dict(value)


def merge_metadata(current: Mapping[str, str], update: Mapping[str, str] | None) -> dict[str, str]:
    """Stripe's update rule: keys are set one by one, an empty value removes its key."""
    if update is None:
        return dict(current)
    if not update:  # `metadata=` (empty) clears every key
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def new_metadata(values: Mapping[str, str] | None) -> dict[str, str]:
    """On create, keys with empty values are simply not set."""
    return {k: v for k, v in (values or {}).items() if v != ""}
