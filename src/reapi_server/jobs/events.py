"""A video job's events, as Server-Sent Events (GET /v1/videos/{id}/events).

Each change of the job's status or progress is one event: `video.updated` while it runs, then
`video.completed` or `video.failed`, after which the stream ends (`video.deleted` if the job is
deleted meanwhile). The data is the video object as GET /v1/videos/{id} renders it. Event ids
name the state an event showed, so a client that reconnects with `Last-Event-ID` gets only what
changed since (nothing, if it saw the end).

A change made in this process wakes the stream at once (`JobChanges`); changes made by another
process are found by re-reading the job every `video_events_reread_seconds`. A comment line is
sent when nothing else was for `video_events_heartbeat_seconds`, and a stream ends after
`video_events_max_seconds`, or when the server stops: the client reconnects to go on. One key
holds at most `video_events_max_streams` streams open in one process (each re-reads its job).

Each re-read also reads the key again: a stream ends once its key is revoked or expired or its
account disabled, as the next request with that key would be refused (a reconnect is).

A stream's place is taken when its request is admitted, in the same step as the count is checked
(no await between), and given back once whichever way it ends: when its chunks end, or when the
answer is over without them ever being read (`EventStream.release`). Counting only from the first
chunk let a burst of requests all pass the check before any of them counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import orjson

from ..api_keys import repository as key_rows
from ..api_keys.auth import Principal
from ..errors import NotFound, RateLimited
from ..runtime import Runtime
from . import service

__all__ = ["MAX_EVENT_ID", "EventStream", "event_stream"]

#: A Last-Event-ID longer than any id this module makes is no id of ours: ignored.
MAX_EVENT_ID = 64
#: What a client should wait before reconnecting (the SSE `retry` field), in milliseconds.
_RETRY_MS = 1000
_FINAL = {"completed": "video.completed", "failed": "video.failed"}


def _event_id(video: dict[str, Any]) -> str:
    reapi = video.get("reapi") or {}
    return f"{video['status']}-{video['progress']}-{reapi.get('attempts', 0)}"


def _event(name: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    # orjson writes no newline: the data is one `data:` line.
    return f"{head}event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


class _Place:
    """One of a key's open streams in this process, given back at most once."""

    def __init__(self, counts: Counter[str], key_id: str) -> None:
        self._counts, self._key_id = counts, key_id
        counts[key_id] += 1
        self._held = True

    def give_back(self) -> None:
        if not self._held:
            return
        self._held = False
        self._counts[self._key_id] -= 1
        if self._counts[self._key_id] <= 0:
            del self._counts[self._key_id]


class EventStream:
    """An admitted stream: its chunks, and `release`, which the answer calls once it is over
    (its chunks may never have been read: a client gone before the first)."""

    def __init__(self, chunks: AsyncIterator[bytes], place: _Place) -> None:
        self.chunks = chunks
        self._place = place

    def release(self) -> None:
        self._place.give_back()


async def event_stream(
    rt: Runtime, principal: Principal, job_id: str, last_event_id: str | None
) -> EventStream:
    """The stream. Raises `NotFound` for a job the caller cannot see, and `RateLimited` when its
    key has too many streams open here, at once (before any chunk): the answer is then a plain
    error."""
    await service.retrieve(rt, principal, job_id)
    # Checked and taken in one step, after the last await: concurrent requests count each other.
    limit = rt.settings.video_events_max_streams
    if rt.event_streams[principal.key_id] >= limit:
        raise RateLimited(
            f"this key already has {limit} event streams open",
            code="too_many_event_streams",
            retry_after=_RETRY_MS / 1000,
        )
    place = _Place(rt.event_streams, principal.key_id)
    seen = last_event_id if last_event_id and len(last_event_id) <= MAX_EVENT_ID else None
    return EventStream(_events(rt, principal, job_id, seen, place), place)


async def _current(rt: Runtime, principal: Principal, job_id: str) -> dict[str, Any] | None:
    try:
        return await service.retrieve(rt, principal, job_id)
    except NotFound:
        return None


async def _key_in_force(rt: Runtime, principal: Principal) -> bool:
    async with rt.db.read() as session:
        return await key_rows.in_force(session, principal.key_id, rt.now())


async def _events(
    rt: Runtime, principal: Principal, job_id: str, seen: str | None, place: _Place
) -> AsyncIterator[bytes]:
    try:
        async with aclosing(_follow(rt, principal, job_id, seen)) as chunks:
            async for chunk in chunks:
                yield chunk
    finally:
        place.give_back()


async def _follow(
    rt: Runtime, principal: Principal, job_id: str, seen: str | None
) -> AsyncGenerator[bytes]:
    settings = rt.settings
    changes = rt.job_changes
    yield f"retry: {_RETRY_MS}\n\n".encode()
    now = anyio.current_time()
    end = now + settings.video_events_max_seconds
    beat = now + settings.video_events_heartbeat_seconds
    # Watched before each read: a change between the read and the wait is not lost.
    with changes.watch(job_id) as signal:
        while not changes.closed:
            if not await _key_in_force(rt, principal):
                return
            video = await _current(rt, principal, job_id)
            if video is None:
                yield _event(
                    "video.deleted", {"id": job_id, "object": "video.deleted", "deleted": True}
                )
                return
            event_id = _event_id(video)
            final = _FINAL.get(video["status"])
            if event_id != seen:
                yield _event(final or "video.updated", video, event_id)
                seen = event_id
                beat = anyio.current_time() + settings.video_events_heartbeat_seconds
            if final is not None:
                return
            now = anyio.current_time()
            if now >= end:
                return
            wait = min(settings.video_events_reread_seconds, beat - now, end - now)
            await signal.wait(max(wait, 0.0))
            if anyio.current_time() >= beat:
                yield b": keep-alive\n\n"
                beat = anyio.current_time() + settings.video_events_heartbeat_seconds
