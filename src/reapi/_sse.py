"""Server-sent events (`text/event-stream`), read by the WHATWG HTML standard's rules: the one
decoder for the SDK's event streams (a gateway's video events) and the adapters' (a provider's
streamed answer).

Bytes in, events out. The stream is UTF-8 (a byte order mark at its start is dropped); lines end
with CRLF, LF or CR and nothing else (not U+2028, which `str.splitlines` would split on); an
event ends at a blank line; `data` lines join with newlines; `id` (without NUL) and `retry`
(ASCII digits) are kept for reconnecting; comments (`:` lines, keep-alives) and unknown fields
are skipped. An event that the end of the stream cuts off is dropped, as the standard says.

What an event may hold is bounded (`EventTooLarge`): a line that never ends, or data lines that
never meet a blank line, would otherwise grow memory for as long as the sender likes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._answer_codecs import json_loads
from ._exceptions import APIResponseError
from ._frozen import quick_init
from ._numbers import ascii_whole_number

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_UPSTREAM_EVENT_BYTES",
    "EventDecoder",
    "EventTooLarge",
    "ServerSentEvent",
    "is_event_stream",
    "read_events",
]

#: What one event of a gateway's stream may hold: a video object is a few kilobytes.
MAX_EVENT_BYTES = 1024 * 1024
#: What one event of a provider's streamed answer may hold: an image in base64 (a partial or
#: final image, or a Gemini chunk with its inline image) with room to spare.
MAX_UPSTREAM_EVENT_BYTES = 64 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


class EventTooLarge(ValueError):
    """An event (or a line of it) over the decoder's bound."""


@quick_init
@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    #: The `event` field; "message" when the event has none.
    event: str
    #: Repr-hidden: a provider's events may echo the prompt.
    data: str = field(repr=False)
    #: The stream's last event id when this event was dispatched (it carries over).
    id: str | None = None

    def json(self, provider: str) -> Any:
        """The data as JSON; data that is not JSON is the sender's fault (fail over). The
        decoder's error holds the data, which may echo the prompt: not chained."""
        try:  # (not `translated`: its two closures cost more than the rest on a small event)
            return json_loads(self.data)
        except ValueError:
            pass
        raise APIResponseError(
            "the provider sent an event that is not valid JSON", provider=provider
        )


class EventDecoder:
    """One stream's decoder: `feed` it the bytes as they come, in chunks cut anywhere."""

    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        #: The id of the last event dispatched: what `Last-Event-ID` sends on reconnecting.
        self.last_id: str | None = None
        #: The server's reconnection delay, in milliseconds, when it gave one.
        self.retry_ms: int | None = None
        self._max = max_event_bytes
        self.new_stream()

    def new_stream(self) -> None:
        """Start over on the next stream of the same source (a reconnection): the last event
        id and the retry delay carry over, as the standard's `EventSource` keeps them."""
        self._started = False  # the byte order mark is looked for once, at the start
        self._after_cr = False  # a chunk ended with CR: a LF opening the next belongs to it
        self._line: list[bytes] = []  # the unfinished line, in the pieces it came in
        self._line_bytes = 0
        self._event = ""
        self._id = self.last_id
        self._data: list[str] = []
        self._data_bytes = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events `chunk` completes; `EventTooLarge` once an event outgrows the bound."""
        chunk = self._unstarted(chunk)
        if not chunk:
            return []
        if b"\r" not in chunk:  # (memchr) lines that end with LF alone: nearly every stream
            return self._lf_lines(chunk)
        return self._any_lines(chunk)

    def _any_lines(self, chunk: bytes) -> list[ServerSentEvent]:
        """`feed`'s events for a chunk with any line ends (CR, LF, CRLF, one cut between
        chunks)."""
        start = 1 if self._after_cr and chunk.startswith(b"\n") else 0
        self._after_cr = chunk.endswith(b"\r")
        events = []
        # Line ends are found with `find` (memchr), each position kept until passed: a streamed
        # image is one line of megabytes, which `bytes.splitlines` walks a byte at a time.
        size = len(chunk)
        none = size + 1  # no line end after `start`
        lf = cr = -1
        while start < size:
            if lf < start:
                lf = chunk.find(b"\n", start)
                lf = none if lf < 0 else lf
            if cr < start:
                cr = chunk.find(b"\r", start)
                cr = none if cr < 0 else cr
            end = min(lf, cr)
            if end == none:  # a line still coming
                self._line.append(chunk[start:])
                self._line_bytes += size - start
                self._check_size()
                break
            if self._line:
                self._line.append(chunk[start:end])
                line = b"".join(self._line)
                self._line, self._line_bytes = [], 0
            else:
                line = chunk[start:end]
            event = self._field(line)
            if event is not None:
                events.append(event)
            start = end + 2 if end == cr and lf == cr + 1 else end + 1  # CRLF, CR or LF
        return events

    def _lf_lines(self, chunk: bytes) -> list[ServerSentEvent]:
        """`feed`'s events for a chunk without CR: one `find` (memchr) a line, and the two
        fields a stream is made of (`data: `, `event: `) read in place; every other line, as in
        `_any_lines`, by `_field`. The same events, bounds and state as the general loop.
        (Not `bytes.split`: it walks a byte at a time, ~0.7 ms for a 300 KB image line.)"""
        start = 0
        if self._after_cr:  # a CR ended the last chunk: a LF opening this one belongs to it
            self._after_cr = False
            start = 1 if chunk.startswith(b"\n") else 0
        events = []
        end = chunk.find(b"\n", start)
        if end >= 0 and self._line:  # the line the last chunk left unfinished ends here
            self._line.append(chunk[start:end])
            line = b"".join(self._line)
            self._line, self._line_bytes = [], 0
            event = self._field(line)
            if event is not None:
                events.append(event)
            start, end = end + 1, chunk.find(b"\n", end + 1)
        while end >= 0:
            if start == end:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif chunk.startswith(b"data: ", start):
                self._data.append(chunk[start + 6 : end].decode("utf-8", errors="replace"))
                self._data_bytes += end - start
                self._check_size()
            elif chunk.startswith(b"event: ", start):
                self._event = chunk[start + 7 : end].decode("utf-8", errors="replace")
            else:
                self._field(chunk[start:end])
            start, end = end + 1, chunk.find(b"\n", end + 1)
        if start < len(chunk):  # a line still coming
            self._line.append(chunk[start:])
            self._line_bytes += len(chunk) - start
            self._check_size()
        return events

    def _unstarted(self, chunk: bytes) -> bytes:
        """`chunk` without the stream's byte order mark, which may come split over chunks."""
        if self._started:
            return chunk
        head = b"".join(self._line) + chunk if self._line else chunk
        if _BOM.startswith(head):  # the mark, or its start: wait for more
            self._line, self._line_bytes = [head] if head else [], len(head)
            return b""
        self._started = True
        self._line, self._line_bytes = [], 0
        return head.removeprefix(_BOM)

    def _field(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        if raw.startswith(b":"):
            return None
        # The name is compared as bytes and only the value is decoded: the colon and the space
        # are ASCII, so this is the line decoded, then split (one copy of a long value, not three).
        colon_at = raw.find(b":")
        if colon_at < 0:
            name, first = raw, len(raw)
        else:
            name, first = raw[:colon_at], colon_at + 1
            if raw.startswith(b" ", first):
                first += 1
        if name == b"data":
            self._data.append(raw[first:].decode("utf-8", errors="replace"))
            self._data_bytes += len(raw)
            self._check_size()
        elif name == b"event":
            self._event = raw[first:].decode("utf-8", errors="replace")
        elif name == b"id" and b"\0" not in raw[first:]:
            self._id = raw[first:].decode("utf-8", errors="replace")
        elif name == b"retry":
            value = raw[first:].decode("utf-8", errors="replace")
            retry_ms = ascii_whole_number(value, max_digits=9)
            self.retry_ms = retry_ms if retry_ms is not None else self.retry_ms
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self.last_id = self._id
        event, data = self._event or "message", self._data
        self._event, self._data, self._data_bytes = "", [], 0
        if not data:
            return None
        return ServerSentEvent(event, "\n".join(data), self.last_id)

    def _check_size(self) -> None:
        if self._data_bytes + self._line_bytes > self._max:
            raise EventTooLarge(f"an event is larger than {self._max} bytes")


def is_event_stream(content_type: str | None) -> bool:
    """Whether a `Content-Type` value is `text/event-stream` (any parameters, any case)."""
    return (content_type or "").partition(";")[0].strip().lower() == "text/event-stream"


def read_events(content: bytes, provider: str) -> list[ServerSentEvent]:
    """The events of a provider's whole streamed answer; an event over
    `MAX_UPSTREAM_EVENT_BYTES` is the provider's fault (fail over)."""
    decoder = EventDecoder(max_event_bytes=MAX_UPSTREAM_EVENT_BYTES)
    try:
        return decoder.feed(content)
    except EventTooLarge:
        pass
    raise APIResponseError(
        f"the provider sent an event larger than {MAX_UPSTREAM_EVENT_BYTES // 2**20} MiB",
        provider=provider,
    )
