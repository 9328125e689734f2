"""Two OpenAI simulators (primary, backup) behind one httpx.MockTransport, for the gateway's
upstream: the simulators speak OpenAI's streamed image answer (`stream: true`), which the fake
upstream does not. A streamed answer goes out one event per chunk, so a reader sees the events
arrive one by one; `cut_after` makes a host's stream break (a reset) after that many events,
`hang_after` go silent, `pace` wait longer between events; `stamps` sets the `created_at` of a
host's events (telling which host a draft came from)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import httpx
from tests.server.fakes import KEYS

from reapi.testing import OpenAISimulator


@dataclass
class SimUpstream:
    sims: dict[str, OpenAISimulator] = field(
        default_factory=lambda: {
            "primary.test": OpenAISimulator(KEYS["primary"]),
            "backup.test": OpenAISimulator(KEYS["backup"]),
        }
    )
    #: host → events sent before the connection is reset.
    cut_after: dict[str, int] = field(default_factory=dict)
    #: host → events sent before the stream goes silent (for good).
    hang_after: dict[str, int] = field(default_factory=dict)
    #: host → seconds between its events (0.01 by default).
    pace: dict[str, float] = field(default_factory=dict)
    #: host → the `created_at` of its events.
    stamps: dict[str, int] = field(default_factory=dict)
    #: (host, path) of each call, and its body, in order.
    calls: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        body = await request.aread()
        self.calls.append((host, path))
        self.bodies.append(body)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer_headers, content = self.sims[host].handle(
            request.method, path, request.url.query.decode(), headers, body, origin=f"http://{host}"
        )
        if "text/event-stream" not in answer_headers.get("content-type", ""):
            return httpx.Response(status, headers=answer_headers, content=content)
        events = [_stamped(e, self.stamps.get(host)) + b"\n\n" for e in content.split(b"\n\n") if e]
        stream = _Events(
            events, self.cut_after.get(host), self.hang_after.get(host), self.pace.get(host, 0.01)
        )
        return httpx.Response(status, headers=answer_headers, stream=stream)


def _stamped(event: bytes, stamp: int | None) -> bytes:
    if stamp is None:
        return event
    name, data = event.split(b"\n", 1)
    fields = json.loads(data.removeprefix(b"data: "))
    return name + b"\ndata: " + json.dumps({**fields, "created_at": stamp}).encode()


class _Events(httpx.AsyncByteStream):
    def __init__(
        self, events: list[bytes], cut_after: int | None, hang_after: int | None, pace: float
    ) -> None:
        self.events = events
        self.cut_after = cut_after
        self.hang_after = hang_after
        self.pace = pace

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, event in enumerate(self.events):
            if index == self.cut_after:
                raise httpx.ReadError("connection reset by peer")
            if index == self.hang_after:
                await anyio.sleep_forever()
            yield event
            await anyio.sleep(self.pace)
