"""An upstream answer's JSON and base64, read by C libraries when they are installed.

An OpenAI image answer is mostly one string: the image in base64, ~5.6 KB for a small PNG and
megabytes for a real one. The standard library reads it a character at a time twice (the JSON
string's scan, then `binascii`'s strict decode): about 98,000 and 135,000 instructions for the
small one, against 33,000 with orjson and a few thousand with pybase64 (SIMD). The gateway's
extras install both; the SDK alone runs on the standard library.

The answer is always the standard library's: each fast reader is used only where it agrees, and
whatever it refuses is read again by the standard library, which then decides (the error it
raises is the standard library's, with nothing of the first attempt chained):

- orjson refuses what `json` also refuses, and more: NaN and Infinity, numbers out of a double's
  range, lone surrogates, a byte order mark, UTF-16 and UTF-32 bodies. One thing it reads
  differently: an integer past 64 bits becomes a float. An answer with a float that could be
  such an integer is read again by `json` (a float that really was one reads the same).
- pybase64's `validate=True` refuses what strict `binascii` refuses, and also padding after a
  whole quantum (`QUJD=`), which `binascii` accepts.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

try:  # the gateway's extras: `reapi[server]`
    import orjson as _orjson
except ImportError:  # pragma: no cover - the SDK without the gateway's extras
    _orjson = None  # type: ignore[assignment]
try:
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - the SDK without the gateway's extras
    _pybase64 = None  # type: ignore[assignment]

__all__ = ["b64decode_strict", "json_loads"]

#: A float this large and whole may be an integer orjson could not hold in 64 bits.
_INTEGER_BOUND = float(2**63)


def json_loads(text: str | bytes) -> Any:
    """`json.loads(text)`, by orjson where it reads the same."""
    if _orjson is not None:
        try:
            value = _orjson.loads(text)
        except _orjson.JSONDecodeError:
            value = _REFUSED
        if value is not _REFUSED and _no_wide_integer(value):
            return value
    return json.loads(text)


def b64decode_strict(text: str) -> bytes:
    """`binascii.a2b_base64(text, strict_mode=True)`, by pybase64 where it reads the same."""
    if _pybase64 is not None:
        try:
            return _pybase64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            pass  # binascii decides, below
    return binascii.a2b_base64(text, strict_mode=True)


_REFUSED = object()


def _no_wide_integer(value: Any) -> bool:
    """Whether no float in `value` is whole and at least 2**63 in size (walked without
    recursion: orjson reads up to 1,024 levels, past Python's recursion limit). Only
    containers go on the stack; a scalar is looked at where it lies (an image event's ~20
    values, each pushed and popped, cost a third more)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return not (kind is float and _wide(value))
    pending = [value]
    while pending:
        item = pending.pop()
        for inner in item.values() if type(item) is dict else item:
            kind = type(inner)
            if kind is dict or kind is list:
                pending.append(inner)
            elif kind is float and _wide(inner):
                return False
    return True


def _wide(number: float) -> bool:
    """A float orjson may have made of an integer past 64 bits."""
    return abs(number) >= _INTEGER_BOUND and number.is_integer()
