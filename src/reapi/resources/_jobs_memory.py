"""What an in-process client remembers about the videos it created, to resubmit once.

A resubmission needs the original request body, so it is only possible while the process that
created the job is alive: reapi never writes a body anywhere to resubmit it later. Jobs resumed
by id in another process are polled normally and simply report their failure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .._local import PreparedVideo
from ..catalog import Route

__all__ = ["JobMemory", "RememberedJob"]


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


class JobMemory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, RememberedJob] = {}
        self._forward: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        self.created: list[str] = []

    def remember(self, video_id: str, job: RememberedJob) -> None:
        with self._lock:
            self._jobs[video_id] = job
            self.created.append(video_id)

    def get(self, video_id: str) -> RememberedJob | None:
        return self._jobs.get(video_id)

    def forward(self, old_id: str, new_id: str) -> None:
        with self._lock:
            self._forward[old_id] = new_id
            self._origin[new_id] = old_id
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
        with self._lock:
            self._jobs.pop(video_id, None)
            if video_id in self.created:
                self.created.remove(video_id)
