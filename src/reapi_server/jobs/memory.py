"""Request bodies of the video jobs this process submitted, kept in memory only, for the one
resubmission to another route a job gets when its task fails upstream.

The body is never written anywhere, so that second chance exists only in the process that took
the request, and only while it is possible at all: a body is taken in only when the job has a
route left, and goes when the job is resubmitted, when its task completes, when this process
ends the job, and — when another process ended or deleted it — at this process's next sweep
(`sweeper.drop_ended_bodies`). It is bounded in bytes (`video_memory_bytes`), count and age (the
job deadline), oldest first. A job whose body is gone is failed and refunded instead of
resubmitted.
"""

from __future__ import annotations

from collections.abc import Callable

from reapi.core import Bodies

from ..config import Settings

__all__ = ["PayloadMemory", "payload_memory"]

PayloadMemory = Bodies

#: Bodies at most, whatever their size.
MAX_JOBS = 10_000


def payload_memory(settings: Settings, clock: Callable[[], float]) -> PayloadMemory:
    return PayloadMemory(
        max_bytes=settings.video_memory_bytes,
        max_jobs=MAX_JOBS,
        max_age=settings.video_job_deadline_seconds,
        clock=clock,
    )
