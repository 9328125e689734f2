"""What a process remembers about the videos it created, to resubmit a failed one once.

A resubmission needs the original request body (prompt, reference bytes), so it is only possible
while the process that created the job is alive: reapi never writes a body anywhere to resubmit
it later. And a body is kept only while a resubmission is still possible: once the job has been
resubmitted, has no other route left, or reached a final state, it goes. What is kept is bounded
in bytes, count and age (`Bodies`), oldest first; a job whose body was evicted early loses only
its resubmission and reports its failure instead. Jobs resumed by id in another process are
polled normally and simply report their failure.

`Bodies` is shared with the gateway (`reapi_server.jobs.memory`); `JobMemory` is the in-process
client's, which adds the ids that keep working after a resubmission.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._local import PreparedVideo
from .._payload import File, Payload
from ..catalog import Route

__all__ = ["Bodies", "JobMemory", "RememberedJob", "body_bytes"]

MIB = 1024 * 1024


@dataclass(slots=True)
class RememberedJob:
    prepared: PreparedVideo
    tried: set[str] = field(default_factory=set)
    resubmitted: bool = False

    def next_routes(self) -> tuple[Route, ...]:
        """Routes left for the one resubmission a failed job gets."""
        if self.resubmitted:
            return ()
        return tuple(r for r in self.prepared.routes if r.key not in self.tried)


def _size(value: Any) -> int:
    if isinstance(value, File):
        return len(value.content)
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_size(item) for item in value)
    return 0


def body_bytes(payload: Payload) -> int:
    """About how much memory a body holds: its text and file bytes."""
    return sum(_size(value) for value in payload.reveal().values())


def _fetched_source_bytes(job: RememberedJob) -> int:
    """A vetted enhancement source fetched from a URL is held beside the body (an upload's
    bytes are the body's own, counted there)."""
    source = job.prepared.source
    if source is None or isinstance(job.prepared.payload.get("input_reference"), File):
        return 0
    return len(source.content)


@dataclass(slots=True)
class _Held:
    job: RememberedJob
    size: int
    since: float


class Bodies:
    """Bodies kept for a resubmission, by job id, oldest first. A body is taken in only while its
    job has a route left to try, and only if it fits: the oldest go first to make room (at most
    `max_bytes` and `max_jobs` in all), and none is kept longer than `max_age` seconds."""

    def __init__(
        self,
        *,
        max_bytes: int = 256 * MIB,
        max_jobs: int = 10_000,
        max_age: float = 2 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes, self.max_jobs, self.max_age = max_bytes, max_jobs, max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        #: Bytes of the bodies held now.
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._held)

    def ids(self) -> list[str]:
        return list(self._held)

    def remember(self, job_id: str, job: RememberedJob) -> bool:
        """Keep the body if a resubmission is possible and it fits; False when it is not kept."""
        size = body_bytes(job.prepared.payload) + _fetched_source_bytes(job)
        with self._lock:
            self._drop(job_id)
            if not job.next_routes() or size > self.max_bytes or self.max_jobs < 1:
                return False
            now = self._clock()
            self._expire(now)
            while self._held and (
                self.bytes + size > self.max_bytes or len(self._held) >= self.max_jobs
            ):
                self._drop(next(iter(self._held)))
            self._held[job_id] = _Held(job, size, now)
            self.bytes += size
            return True

    def get(self, job_id: str) -> RememberedJob | None:
        with self._lock:
            self._expire(self._clock())
            held = self._held.get(job_id)
            return held.job if held is not None else None

    def take(self, job_id: str) -> RememberedJob | None:
        """The body, no longer kept: for the one resubmission it is used for."""
        with self._lock:
            self._expire(self._clock())
            held = self._held.get(job_id)
            self._drop(job_id)
            return held.job if held is not None else None

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._drop(job_id)

    def expire(self) -> int:
        """Drop the bodies older than `max_age`; how many went."""
        with self._lock:
            return self._expire(self._clock())

    def _expire(self, now: float) -> int:
        dropped = 0
        for job_id, held in list(self._held.items()):
            if now - held.since <= self.max_age:
                break  # oldest first: the rest are younger
            self._drop(job_id)
            dropped += 1
        return dropped

    def _drop(self, job_id: str) -> None:
        held = self._held.pop(job_id, None)
        if held is not None:
            self.bytes -= held.size


class JobMemory:
    """An in-process client's videos: bodies for the one resubmission (`Bodies`), and the ids
    that follow a resubmission (old id → new id) and make up `videos.list()`, the newest
    `max_ids` of each."""

    def __init__(
        self,
        *,
        max_bytes: int = 256 * MIB,
        max_jobs: int = 1_000,
        max_age: float = 2 * 3600.0,
        max_ids: int = 10_000,
    ) -> None:
        self._lock = threading.Lock()
        self._bodies = Bodies(max_bytes=max_bytes, max_jobs=max_jobs, max_age=max_age)
        self._max_ids = max_ids
        self._forward: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        self.created: list[str] = []

    def remember(self, video_id: str, job: RememberedJob) -> None:
        """A job was submitted under `video_id`: list it, and keep its body while it may
        still be resubmitted."""
        with self._lock:
            self.created.append(video_id)
            del self.created[: -self._max_ids]
        self._bodies.remember(video_id, job)

    def get(self, video_id: str) -> RememberedJob | None:
        return self._bodies.get(video_id)

    def take(self, video_id: str) -> RememberedJob | None:
        """The body for the job's resubmission; it is not kept after that."""
        return self._bodies.take(video_id)

    def finished(self, video_id: str) -> None:
        """The job reached a final state: nothing can be resubmitted any more."""
        self._bodies.forget(video_id)

    def forward(self, old_id: str, new_id: str) -> None:
        with self._lock:
            self._forward[old_id] = new_id
            self._origin[new_id] = old_id
            for ids in (self._forward, self._origin):
                while len(ids) > self._max_ids:
                    del ids[next(iter(ids))]
            if old_id in self.created:
                self.created.remove(old_id)

    def resolve(self, video_id: str) -> str:
        """Follow resubmissions: the id a caller holds keeps working."""
        seen = set()
        while video_id in self._forward and video_id not in seen:
            seen.add(video_id)
            video_id = self._forward[video_id]
        return video_id

    def origin(self, video_id: str) -> str | None:
        """The id this job was resubmitted from, if it was."""
        return self._origin.get(video_id)

    def forget(self, video_id: str) -> None:
        self._bodies.forget(video_id)
        with self._lock:
            if video_id in self.created:
                self.created.remove(video_id)
