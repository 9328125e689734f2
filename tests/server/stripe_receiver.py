"""A tiny webhook endpoint for Stripe simulator tests: verifies every delivery with the official
`stripe.Webhook.construct_event` and records what it saw, on a real loopback socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe


@dataclass
class Received:
    event_id: str | None
    event_type: str | None
    verified: bool
    signature: str | None
    error: str | None = None


@dataclass
class Receiver:
    secret: str
    url: str = ""
    #: Every request in arrival order, verified or not.
    received: list[Received] = field(default_factory=list)
    #: Answer 500 to this many more verified deliveries before answering 200.
    fail_next: int = 0
    #: Answer every verified delivery with this status (None: 200, after fail_next).
    always: int | None = None
    #: Seconds each request is held before answering (to see overlapping deliveries).
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def events(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    def types(self) -> list[str | None]:
        return [r.event_type for r in self.events]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until `count` requests arrived (verified or not)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} of {count} deliveries arrived")
            time.sleep(0.01)
        return list(self.received)

    def answer(self, payload: bytes, signature: str | None) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            try:
                event = stripe.Webhook.construct_event(payload, signature or "", self.secret)
            except (stripe.SignatureVerificationError, ValueError) as exc:
                event_id = _event_id(payload)
                self.received.append(Received(event_id, None, False, signature, str(exc)[:80]))
                return 400
            self.received.append(Received(event.id, event.type, True, signature))
            with self._lock:
                if self.always is not None:
                    return self.always
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return 500
            return 200
        finally:
            with self._lock:
                self.in_flight -= 1


def _event_id(payload: bytes) -> str | None:
    try:
        value: Any = json.loads(payload).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


@contextmanager
def stripe_receiver(secret: str = "whsec_test_receiver") -> Iterator[Receiver]:
    receiver = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = receiver.answer(payload, self.headers.get("stripe-signature"))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/billing/stripe/webhook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
