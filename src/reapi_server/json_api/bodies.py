"""Reading request bodies into memory only, with a size limit.

Starlette's form parser spools uploads over 1 MiB to temporary files; a reference image or mask
would then touch the disk. This parser keeps every part in memory (bounded by `max_body_bytes`),
so an upload leaves no temporary file and no open descriptor behind, whatever happens.

The errors of a malformed body are raised in place of the parser's (`reapi._detached`): an
`orjson.JSONDecodeError` holds the whole body as `.doc`, a multipart error a piece of it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from reapi.core import ascii_whole_number, translated, translated_async

from ..errors import GatewayError, PayloadTooLarge

__all__ = [
    "FormFile",
    "ParsedForm",
    "is_json_type",
    "read_body",
    "read_form",
    "read_json",
    "require_json_content_type",
    "unsupported_content_type",
]

_MAX_PARTS = 40
_NOT_JSON = object()
#: Digits enough for an integer orjson cannot hold (2^64 has 20); a prompt's long number too,
#: which costs only the second parse.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")
#: Past this many digits an integer is kept as `OutOfRange` (Python refuses to read one over
#: 4,300 digits, and no field takes one nearly as long).
_MAX_INT_DIGITS = 100


class OutOfRange:
    """A JSON number no field can take (`1e400`, a 200-digit integer): it fails any field's
    type, so the refusal names the field ("n must be an integer") instead of the body."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<number out of range>"


_OUT_OF_RANGE = OutOfRange()


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float | OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else _OUT_OF_RANGE


def _int(text: str) -> int | OutOfRange:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else _OUT_OF_RANGE


def _past_a_double(raw: bytes) -> Any:
    """A body orjson refused, when a number past a double's range was why and it is JSON
    otherwise; `ValueError` else (orjson's other refusals stand: a lone surrogate, say)."""
    data = wide_numbers(raw)
    found: list[OutOfRange] = []

    def kept(value: object) -> None:
        if not isinstance(value, OutOfRange):
            raise TypeError
        found.append(value)

    try:
        orjson.dumps(data, default=kept)  # what orjson refuses besides the numbers
    except orjson.JSONEncodeError:
        found.clear()
    if not found:
        raise ValueError("not JSON, whatever its numbers")
    return data


def wide_numbers(raw: bytes) -> Any:
    """`raw` read by Python's parser, for the bodies orjson reads otherwise than written: an
    integer past 64 bits exactly (a range check then says "seed must be between ..."), a
    number past a double's range as `OutOfRange`. `ValueError` for what is not JSON (NaN and
    Infinity included, which Python's parser alone would take)."""
    return json.loads(raw, parse_float=_float, parse_int=_int, parse_constant=_refuse_constant)


@dataclass(frozen=True, slots=True)
class FormFile:
    filename: str
    content_type: str
    content: bytes = field(repr=False)

    def __repr__(self) -> str:  # its name and type are the caller's to choose: not shown
        return f"FormFile(<{len(self.content)} bytes>)"


@dataclass(slots=True)
class ParsedForm:
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, FormFile]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ParsedForm(<{len(self.fields)} fields, {len(self.files)} files>)"


def _unreadable(error: BaseException) -> GatewayError:
    if isinstance(error, ClientDisconnect):
        # Nobody is left to answer; end quietly rather than as an unhandled error.
        return GatewayError("the client closed the connection", code="client_disconnected")
    return GatewayError("the multipart body could not be parsed", code="invalid_multipart")


def _too_large(limit: int) -> PayloadTooLarge:
    size = f"{limit / (1 << 20):g} MiB" if limit >= 1 << 20 else f"{limit:,} bytes"
    return PayloadTooLarge(f"the request body is larger than this gateway's limit of {size}")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, read from the ASGI messages themselves: a body that came in one message
    (any small JSON body) is returned as it came, without the stream's generator and a copy."""
    declared = ascii_whole_number(request.headers.get("content-length") or "")
    if declared is not None and declared > limit:
        raise _too_large(limit)
    receive = request.receive
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":
            raise _unreadable(ClientDisconnect())
        if kind != "http.request":
            continue  # as Starlette's stream: nothing else carries the body
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return b"".join((*parts, chunk)) if parts else chunk
        parts.append(chunk)


def _media_type(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` → `application/json`."""
    return content_type.partition(";")[0].strip().lower()


def is_json_type(content_type: str) -> bool:
    """`application/json`, and the JSON types clients also send (`text/json`, a `+json`
    suffix such as `application/vnd.api+json`), with any parameters, in any case. Never a
    type a browser may send cross-site without asking (`text/plain`, forms)."""
    media_type = _media_type(content_type)
    return media_type in ("application/json", "text/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def require_json_content_type(content_type: str | None) -> None:
    """A body declared as something other than JSON is refused, as OpenAI refuses it, rather
    than parsed as JSON anyway: `application/json` with any parameters (`; charset=utf-8`), in
    any case, passes, and so does a body that declares no type at all."""
    if not content_type or is_json_type(content_type):
        return
    raise unsupported_content_type(content_type)


def unsupported_content_type(
    content_type: str, send_as: str = "JSON sent with `Content-Type: application/json`"
) -> GatewayError:
    """The refusal of a body declared as `content_type`, saying how to send it (`send_as`)."""
    hint = (
        " (curl's `-d` sends a form type unless given `-H 'Content-Type: application/json'`)"
        if _media_type(content_type) == "application/x-www-form-urlencoded"
        else ""
    )
    return GatewayError(
        f"the request body must be {send_as}; this request declared another content type{hint}",
        code="unsupported_content_type",
    )


async def read_json(request: Request, limit: int) -> Any:
    require_json_content_type(request.headers.get("content-type"))
    raw = await read_body(request, limit)
    return loads_json(raw)


def loads_json(raw: bytes) -> Any:
    """The body as JSON, its numbers as written (`wide_numbers`); "not valid JSON" only for
    what is not."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = _NOT_JSON
    if data is _NOT_JSON:  # orjson refuses a number past a double (`1e400`): JSON allows it
        return translated(
            lambda: _past_a_double(raw),
            # json.JSONDecodeError is a ValueError, and so is a NaN or Infinity; Python's parser
            # recurses, so nesting orjson would have taken may be too deep for it
            (ValueError, RecursionError),
            lambda _: GatewayError("the request body is not valid JSON", code="invalid_json"),
        )
    if _LONG_DIGITS.search(raw) is not None:  # orjson reads an integer past 64 bits as a float
        try:
            return wide_numbers(raw)
        except RecursionError:  # deeper than Python's parser goes: orjson's reading stands
            pass
    return data


class _Collector:
    def __init__(self, charset: str) -> None:
        self.charset = charset
        self.form = ParsedForm()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        if len(self.form.fields) + len(self.form.files) >= _MAX_PARTS:
            raise GatewayError(f"at most {_MAX_PARTS} form parts", code="too_many_parts")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def on_part_end(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode(self.charset, "replace")
        content = bytes(self._data)
        self._data = bytearray()
        if b"filename" in options:
            filename = options[b"filename"].decode(self.charset, "replace")
            content_type = self._headers.get(b"content-type", b"application/octet-stream")
            self.form.files.append(
                (name, FormFile(filename or name, content_type.decode("latin-1"), content))
            )
        else:
            self.form.fields.append((name, content.decode(self.charset, "replace")))


async def read_form(request: Request, limit: int) -> ParsedForm:
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise GatewayError("multipart body without a boundary", code="invalid_multipart")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    collector = _Collector(charset if charset.lower() in ("utf-8", "latin-1") else "utf-8")
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
        },
    )

    async def parse() -> None:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            parser.write(chunk)
        parser.finalize()

    await translated_async(parse, (ClientDisconnect, FormParserError), _unreadable)
    return collector.form
