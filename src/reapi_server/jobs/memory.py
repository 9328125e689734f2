"""Request bodies of video jobs this process submitted, kept in memory only.

A task that fails upstream gets one resubmission to another route, which needs the original body.
The body is never written anywhere, so that second chance exists only while the process that took
the request is alive; after a restart a failed task is simply refunded.
"""

from __future__ import annotations

from reapi.resources._jobs_memory import RememberedJob

__all__ = ["PayloadMemory"]

_LIMIT = 10_000


class PayloadMemory:
    def __init__(self) -> None:
        self._jobs: dict[str, RememberedJob] = {}

    def remember(self, job_id: str, job: RememberedJob) -> None:
        if len(self._jobs) >= _LIMIT:
            self._jobs.pop(next(iter(self._jobs)))
        self._jobs[job_id] = job

    def get(self, job_id: str) -> RememberedJob | None:
        return self._jobs.get(job_id)

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
