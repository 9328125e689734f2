"""Server-Sent Events, client side: lines in, events out (the WHATWG event-stream rules a client
needs: `event`, `data`, `id` and the `retry` hint; comments are skipped)."""

from __future__ import annotations

from dataclasses import dataclass

from ._numbers import ascii_whole_number

__all__ = ["EventDecoder", "ServerSentEvent"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    #: The stream's last event id when this event was dispatched (it carries over).
    id: str | None


class EventDecoder:
    def __init__(self) -> None:
        self.last_id: str | None = None
        #: The server's reconnection delay, in milliseconds, when it gave one.
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """One line (without its line break); the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry":
            self.retry_ms = ascii_whole_number(value, max_digits=9) or self.retry_ms
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event, "\n".join(data), self.last_id)
