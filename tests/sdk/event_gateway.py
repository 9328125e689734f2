"""A gateway stand-in on a real socket for `videos.wait`: scripted event streams for
GET /v1/videos/{id}/events (one script per connection, the last one repeating) and a video
object for GET /v1/videos/{id}; records every request."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


def video(video_id: str = "video_1", status: str = "completed", progress: int = 100) -> dict:
    return {
        "id": video_id,
        "object": "video",
        "model": "m",
        "status": status,
        "progress": progress,
        "created_at": 1,
    }


def event(name: str, body: dict, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(body)}\n\n".encode()


@dataclass
class Stream:
    """One connection to the events route: `status`, then `chunks` (with `pause` seconds
    before each); `end`: "close" (a clean end), "break" (the body is cut mid-message) or
    "hang" (nothing more, the connection stays open)."""

    chunks: list[bytes] = field(default_factory=list)
    status: int = 200
    end: str = "close"
    pause: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        gateway = self.server.gateway
        gateway.seen.append(Seen("GET", self.path, dict(self.headers.items())))
        if self.path.endswith("/events"):
            self._stream(gateway.next_stream())
        else:
            body = json.dumps(gateway.polled).encode()
            status = 404 if gateway.polled.get("error") else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _stream(self, stream: Stream) -> None:
        if stream.status != 200:
            body = json.dumps({"error": {"message": "no", "type": "x", "code": "not_found"}})
            self.send_response(stream.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")  # this server closes it after each stream
        self.end_headers()
        try:
            for chunk in stream.chunks:
                time.sleep(stream.pause)
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            if stream.end == "close":
                self.wfile.write(b"0\r\n\r\n")
            elif stream.end == "break":
                self.wfile.write(b"40\r\ndata: cut")  # a chunk that never completes
            elif stream.end == "hang":
                self.server.gateway.release.wait(30)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    gateway: EventGateway


class EventGateway:
    def __init__(self, *streams: Stream, polled: dict | None = None) -> None:
        self.streams = list(streams)
        self.polled = polled if polled is not None else video()
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.gateway = self
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def next_stream(self) -> Stream:
        with self._lock:
            return self.streams.pop(0) if len(self.streams) > 1 else self.streams[0]

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def __enter__(self) -> EventGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
