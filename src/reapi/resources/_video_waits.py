"""What `videos.wait()` shares between its twins: reporting progress, and following a video's
event stream on a gateway (GET /v1/videos/{id}/events, Server-Sent Events).

A stream that ends before the video did is opened again with `Last-Event-ID`, after the delay
the server's `retry` field asks for (the gateway ends streams after a while). The wait falls back
to polling when the gateway answers anything but a stream (404: an older gateway without the
route), when a stream breaks or stays silent past `STREAM_IDLE` (the gateway sends a comment
every 15 s), when the video is deleted (polling then says so), or after `MAX_EMPTY_STREAMS`
streams in a row that ended at once with nothing said.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .._exceptions import APITimeoutError
from .._gateway import GatewayProtocols
from .._options import CallOptions
from .._sse import EventDecoder
from ..providers import UpstreamRequest
from ..types import Video

__all__ = [
    "FIRST_BYTE",
    "MAX_EMPTY_STREAMS",
    "STREAM_IDLE",
    "EventWait",
    "Progress",
    "ProgressCallback",
    "finished",
]

ProgressCallback = Callable[[Video], None]

#: Seconds a stream may be silent before it counts as broken.
STREAM_IDLE = 60.0
#: Seconds to connect and get the stream's head.
FIRST_BYTE = 30.0
MAX_EMPTY_STREAMS = 3
#: A stream that ends sooner than this with no event counts as empty.
QUICK_END = 1.0
#: Seconds before opening the next stream: the server's `retry`, else this; at most the cap.
RECONNECT = 0.5
MAX_RECONNECT = 30.0
_VIDEO_EVENTS = frozenset({"video.updated", "video.completed", "video.failed"})


def finished(video: Video) -> bool:
    return video.status in ("completed", "failed")


class Progress:
    """What one wait has seen: `on_progress` hears each change of status or progress once,
    whether it came from an event or a poll."""

    def __init__(self, on_progress: ProgressCallback | None, timeout: float) -> None:
        self._on_progress = on_progress
        self._timeout = timeout
        self._last: tuple[str, int] | None = None
        self.video: Video | None = None

    def see(self, video: Video) -> None:
        self.video = video
        state = (video.status, video.progress)
        if self._on_progress is not None and state != self._last:
            self._on_progress(video)
        self._last = state

    def timed_out(self) -> APITimeoutError:
        status = self.video.status if self.video is not None else "unfinished"
        return APITimeoutError(
            f"video still {status} after {self._timeout:g}s", code="wait_timeout"
        )


class EventWait:
    """One wait's way through its event streams. The twins open each stream (`request`), hand
    over its status (`opened`) and lines (`line`), and say how it ended (`ended`, `broke`),
    until `done`: then `final` is the finished video, or None to poll instead."""

    def __init__(self, gateway: GatewayProtocols, progress: Progress) -> None:
        self._gateway = gateway
        self._progress = progress
        self._decoder = EventDecoder()
        self._events = 0
        self._empty = 0
        self._opened_at = 0.0
        self._last_id: str | None = None
        self.final: Video | None = None
        self.fall_back = False

    @property
    def done(self) -> bool:
        return self.final is not None or self.fall_back

    def request(self, video_id: str, call: CallOptions) -> UpstreamRequest:
        return self._gateway.video_events(video_id, call, self._last_id)

    def opened(self, status: int) -> bool:
        """Whether the answer is a stream to read."""
        if status != 200:
            self.fall_back = True
            return False
        retry_ms = self._decoder.retry_ms
        self._decoder = EventDecoder()
        self._decoder.retry_ms = retry_ms
        self._events = 0
        self._opened_at = time.monotonic()
        return True

    def line(self, line: str) -> bool:
        """Whether the wait is over with this line (`done`)."""
        event = self._decoder.feed(line)
        if event is None:
            return False
        self._events += 1
        self._last_id = event.id
        if event.event == "video.deleted":
            self.fall_back = True
        elif event.event in _VIDEO_EVENTS:  # other kinds: from a later gateway, skipped
            video = self._gateway.parse_video(event.data)
            if video is None:
                self.fall_back = True
            else:
                self._progress.see(video)
                self.final = video if finished(video) else None
        return self.done

    def ended(self) -> float:
        """The stream ended before the video did: go on in a new one after the seconds this
        returns, unless streams keep ending at once with nothing said."""
        quick = time.monotonic() - self._opened_at < QUICK_END
        self._empty = self._empty + 1 if quick and not self._events else 0
        if self._empty >= MAX_EMPTY_STREAMS:
            self.fall_back = True
        retry_ms = self._decoder.retry_ms
        return min(retry_ms / 1000 if retry_ms is not None else RECONNECT, MAX_RECONNECT)

    def broke(self) -> None:
        self.fall_back = True
