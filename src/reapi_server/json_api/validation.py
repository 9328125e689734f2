"""Request validation errors as OpenAI answers them: 400 `invalid_request_error`, the parameter,
a stable code and a message that states the rule (`n must be between 1 and 10`).

Messages are built from the error's location, kind and the schema's own limits only: never
from the value submitted (pydantic's `input`), which may be a prompt or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel

from reapi.core import excerpt

__all__ = ["Described", "bounds_of", "describe"]

Described = tuple[str, str, str | None]  # message, code, param

_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "decimal": "a number",
    "bool": "a boolean",
    "string": "a string",
    "str": "a string",
    "dict": "an object",
    "model": "an object",
    "model_attributes": "an object",
    "list": "an array",
    "tuple": "an array",
}
_SKIP = ("body", "query", "path", "header")


def bounds_of(model: type[BaseModel], loc: Sequence[Any]) -> dict[str, Any]:
    """Every limit the model declares on a top-level field (both ends of a range), so that a
    message can state the whole rule, not only the end that was crossed."""
    if len(loc) != 1 or not isinstance(loc[0], str) or loc[0] not in model.model_fields:
        return {}
    found: dict[str, Any] = {}
    for rule in model.model_fields[loc[0]].metadata:
        if isinstance(rule, Ge):
            found["ge"] = rule.ge
        elif isinstance(rule, Gt):
            found["gt"] = rule.gt
        elif isinstance(rule, Le):
            found["le"] = rule.le
        elif isinstance(rule, Lt):
            found["lt"] = rule.lt
        elif isinstance(rule, MinLen):
            found["min_length"] = rule.min_length
        elif isinstance(rule, MaxLen):
            found["max_length"] = rule.max_length
    return found


def _range(name: str, ctx: Mapping[str, Any]) -> str | None:
    low = ctx.get("ge", ctx.get("gt"))
    high = ctx.get("le", ctx.get("lt"))
    if "ge" in ctx and "le" in ctx:
        return f"{name} must be between {low} and {high}"
    if low is not None and high is None:
        return f"{name} must be {'at least' if 'ge' in ctx else 'greater than'} {low}"
    if high is not None and low is None:
        return f"{name} must be {'at most' if 'le' in ctx else 'less than'} {high}"
    if low is not None and high is not None:
        return f"{name} must be more than {low} and less than {high}"
    return None


def _location(error: Mapping[str, Any]) -> list[Any]:
    location = [p for p in error.get("loc", ()) if p not in _SKIP]
    if len(location) > 1 and location[-1] in _TYPE_NAMES:
        # pydantic names a union's member last (`seconds.int`): the parameter is `seconds`.
        location.pop()
    return location


def _one(error: Mapping[str, Any]) -> Described:
    # A location may hold a key the caller wrote (an unknown field): an excerpt at most.
    location = [excerpt(p) for p in _location(error)]
    param = ".".join(location) or None
    name = param or "the request body"
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return f"{name} is required", "missing_required_parameter", param
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        above = kind.startswith("less")
        bound = ctx.get("le", ctx.get("lt")) if above else ctx.get("ge", ctx.get("gt"))
        code = "above_max_value" if above else "below_min_value"
        code = ("integer_" if isinstance(bound, int) else "number_") + code
        return _range(name, ctx) or f"{name} is out of range", code, param
    if kind in ("string_too_short", "string_too_long"):
        low, high = ctx.get("min_length"), ctx.get("max_length")
        if kind == "string_too_short" and low == 1:
            return f"{name} must not be empty", "empty_string", param
        if kind == "string_too_short":
            return f"{name} must be at least {low} characters", "string_below_min_length", param
        return f"{name} must be at most {high} characters", "string_above_max_length", param
    if kind in ("too_short", "too_long"):
        low, high = ctx.get("min_length"), ctx.get("max_length")
        if kind == "too_short":
            return f"{name} must have at least {low} item(s)", "array_below_min_length", param
        return f"{name} must have at most {high} item(s)", "array_above_max_length", param
    if kind in ("literal_error", "enum"):
        return (
            f"{name} must be {ctx.get('expected', 'one of the documented values')}",
            ("invalid_value"),
            param,
        )
    if kind == "extra_forbidden":
        return f"{name} is not a known parameter", "unknown_parameter", param
    if kind == "json_invalid":
        return "the request body is not valid JSON", "invalid_json", None
    if kind == "value_error":  # raised by our own validators: their text names no value
        return str(error.get("msg", "")).removeprefix("Value error, "), "invalid_value", param
    expected = _TYPE_NAMES.get(kind.split("_")[0]) or _TYPE_NAMES.get(
        kind.removesuffix("_type").removesuffix("_parsing")
    )
    if expected is not None:
        return f"{name} must be {expected}", "invalid_type", param
    return f"{name} is invalid", "invalid_value", param


def describe(errors: Sequence[Mapping[str, Any]]) -> Described:
    """One message for up to three problems; the code and param of the first."""
    described: list[Described] = []
    for message, code, param in (_one(error) for error in errors[:3]):
        earlier = described[-1] if described else None
        alternative = f"{param} must be "
        if earlier is not None and earlier[2] == param and message.startswith(alternative):
            # Each member of a union refused the value: one rule, `x must be a or b`.
            described[-1] = (f"{earlier[0]} or {message.removeprefix(alternative)}", *earlier[1:])
        else:
            described.append((message, code, param))
    if not described:
        return "the request is invalid", "invalid_value", None
    _, code, param = described[0]
    return "; ".join(message for message, _, _ in described), code, param
