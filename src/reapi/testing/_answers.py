"""How `SimServer` writes an answer: its head, its body (whole, trickled or cut short), and a
stream of server-sent events sent event by event in a chunked body.

A streaming API sends its headers as soon as it has accepted the request, then each event as it
is ready: the simulator stands generation time in by spreading the fault switch's `latency` over
the events, so the last one arrives when an answer that is not streamed would have.
"""

from __future__ import annotations

import asyncio
import re

from ._messages import Answer

__all__ = [
    "SLOW_BODY_INTERVAL",
    "SLOW_BODY_STEP",
    "head_of",
    "split_events",
    "write_body",
    "write_event_stream",
]

_REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    302: "Found",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
#: SLOW_BODY sends this many bytes per interval.
SLOW_BODY_STEP = 8
SLOW_BODY_INTERVAL = 0.1
#: An event ends with a blank line, whichever line ending the provider uses.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def head_of(answer: Answer, *, keep_alive: bool, chunked: bool = False) -> bytes:
    status, headers, content = answer
    framing = "transfer-encoding: chunked" if chunked else f"content-length: {len(content)}"
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", framing]
    lines += [
        f"{name}: {value}"
        for name, value in headers.items()
        if name.lower() not in ("content-length", "connection", "transfer-encoding")
    ]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def write_body(writer: asyncio.StreamWriter, content: bytes, *, slow: bool = False) -> None:
    if not slow:
        writer.write(content)
        await writer.drain()
        return
    await writer.drain()
    for start in range(0, len(content), SLOW_BODY_STEP):
        await asyncio.sleep(SLOW_BODY_INTERVAL)
        writer.write(content[start : start + SLOW_BODY_STEP])
        await writer.drain()


def split_events(content: bytes) -> list[bytes]:
    """The events of an event-stream body, each with its closing blank line."""
    events, start = [], 0
    for end in _EVENT_END.finditer(content):
        events.append(content[start : end.end()])
        start = end.end()
    if start < len(content):
        events.append(content[start:])
    return events


async def write_event_stream(
    writer: asyncio.StreamWriter,
    answer: Answer,
    head_bytes: bytes,
    *,
    latency: float,
    last: bool = True,
    head_only: bool = False,
    slow: bool = False,
) -> bool:
    """Send the head at once, then event i of n once `latency * (i + 1) / n` has passed, each
    as one chunk. `head_only`: stop after the head; `last=False`: stop before the last event.
    True when the whole stream (and its closing chunk) went out."""
    writer.write(head_bytes)
    await writer.drain()
    if head_only:
        return False
    events = split_events(answer[2])
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, event in enumerate(events if last else events[:-1]):
        due = started + latency * (index + 1) / len(events)
        await asyncio.sleep(max(due - loop.time(), 0.0))
        await write_body(writer, b"%x\r\n%s\r\n" % (len(event), event), slow=slow)
    if not last:
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True
