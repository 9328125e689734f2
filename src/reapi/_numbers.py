"""Whole numbers written as text by callers and upstreams: ASCII digits, no more than needed.

`str.isdigit()` is true for '²' and '٤': `int()` then refuses the first (a crash where a 400 was
due) and reads the second as 4 (a value nobody typed). `int()` also refuses more than 4,300
digits. So a number written as text is read here only, and a boolean is never a number.
"""

from __future__ import annotations

from ._exceptions import InvalidRequestError

__all__ = ["MAX_DIGITS", "ascii_whole_number", "whole_number"]

#: Enough for any signed 64-bit value: no parameter of a request needs more.
MAX_DIGITS = 18


def ascii_whole_number(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The number `text` spells in 1 to `max_digits` ASCII digits, else None."""
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def whole_number(value: object, param: str) -> int:
    """An int (not a bool) or ASCII digits as an int; anything else refused, naming `param`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        parsed = ascii_whole_number(value)
        if parsed is not None:
            return parsed
    raise InvalidRequestError(f"{param} must be a whole number", param=param, code="invalid_type")
