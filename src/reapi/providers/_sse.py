"""Server-sent events (`text/event-stream`, WHATWG HTML "Server-sent events"), read from a whole
answer body: what a streamed provider answer is made of.

The engine reads the stream (its deadlines are about silence, not events); adapters read the
events from the body it hands them. Lines end with CRLF, LF or CR; an event ends at a blank
line; `data:` lines join with newlines; comments (`:` lines, keep-alives) and `id:`/`retry:`
fields carry nothing an adapter needs. An event cut off by the end of the body is dropped, as
the standard says.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .._detached import translated
from .._exceptions import APIResponseError
from ._protocol import UpstreamResponse

__all__ = ["ServerSentEvent", "is_event_stream", "read_events"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    #: The `event:` field; "message" when the event has none.
    event: str
    data: str = field(repr=False)

    def json(self, provider: str) -> Any:
        """The data as JSON; data that is not JSON is the upstream's fault (fail over). The
        decoder's error holds the data, which may echo the prompt: not chained."""
        return translated(
            lambda: json.loads(self.data),
            ValueError,
            lambda _: APIResponseError(
                "the provider sent an event that is not valid JSON", provider=provider
            ),
        )


def is_event_stream(response: UpstreamResponse) -> bool:
    content_type = response.header("content-type") or ""
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def read_events(content: bytes) -> list[ServerSentEvent]:
    text = content.decode("utf-8", errors="replace").removeprefix("\ufeff")
    events: list[ServerSentEvent] = []
    kind, data = "", list[str]()
    # What follows the last line ending is an unfinished line: never part of an event.
    for line in _LINE_END.split(text)[:-1]:
        if not line:
            if data:
                events.append(ServerSentEvent(kind or "message", "\n".join(data)))
            kind, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
    return events
