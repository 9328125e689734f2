"""What simulators receive and answer: a parsed request, a response triple, multipart forms."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

__all__ = [
    "Answer",
    "FormPart",
    "SimRequest",
    "SimResponse",
    "json_answer",
    "parse_multipart",
]

#: What an app's `handle` returns; a `SimResponse` is one.
Answer = tuple[int, dict[str, str], bytes]


class SimResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def json_answer(status: int, body: object, headers: Mapping[str, str] | None = None) -> SimResponse:
    return SimResponse(
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(body, separators=(",", ":")).encode(),
    )


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass(frozen=True, slots=True)
class SimRequest:
    """One request as an app sees it. Header names are lower case."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: The simulator's own base URL, for links it hands out (e.g. result files).
    origin: str = ""

    @property
    def content_type(self) -> str:
        """The media type alone, lower case (no parameters)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def params(self) -> dict[str, str]:
        """Query parameters; a repeated name keeps its last value."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body)

    def form(self) -> list[FormPart]:
        """The multipart/form-data body, part by part; ValueError when it is not one."""
        return parse_multipart(self.headers.get("content-type", ""), self.body)


_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def _header_params(value: str) -> dict[str, str]:
    return {
        name.lower(): quoted.replace('\\"', '"') or bare
        for name, quoted, bare in _PARAM.findall(value)
    }


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    """RFC 7578 bodies, exactly as sent (binary parts untouched). ValueError if malformed."""
    if content_type.partition(";")[0].strip().lower() != "multipart/form-data":
        raise ValueError("not multipart/form-data")
    boundary = _header_params(content_type).get("boundary")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    # Every delimiter but the first is preceded by CRLF; prefixing one makes them all alike.
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise ValueError("multipart body without its closing delimiter")
    parts = []
    for section in sections[1:-1]:
        head, found, data = section.partition(b"\r\n\r\n")
        if not found:
            raise ValueError("multipart part without headers")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        if "name" not in disposition:
            raise ValueError("multipart part without a name")
        parts.append(
            FormPart(
                disposition["name"], data, disposition.get("filename"), headers.get("content-type")
            )
        )
    return parts
