"""OpenAI Videos (PROVIDERS.md §2): the job store behind `/v1/videos`.

Each poll moves a job one step: queued -> in_progress -> completed (or failed). Only what the
Video object reports is kept, and at most `MAX_JOBS` jobs (the oldest go first).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._messages import FormPart
from ._openai_errors import Fields, OpenAIError

__all__ = ["MAX_JOBS", "VIDEO_MODELS", "VideoJob", "VideoJobs", "check_video_request"]

MAX_JOBS = 10_000
_MODELS = {
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
}
VIDEO_MODELS = frozenset(_MODELS)
_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
#: The guide allows 1080p on sora-2-pro and 16/20 s on both; the SDK enums lag behind it.
_PRO_SIZES = (*_SIZES, "1920x1080", "1080x1920")
_SECONDS = ("4", "8", "12", "16", "20")
_PARAMS = {"prompt", "model", "seconds", "size", "input_reference"}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")
_NESTED_REFERENCE = re.compile(r"input_reference\[(\w+)\]")
_PROGRESS = {"queued": 0, "in_progress": 50, "completed": 100}


@dataclass(frozen=True, slots=True)
class VideoRequest:
    model: str
    prompt: str
    seconds: str
    size: str


def _not_found(video_id: str) -> OpenAIError:
    return OpenAIError(404, f"Video with id '{video_id}' not found.", param="video_id")


def check_video_request(body: Any, parts: Sequence[FormPart] | None) -> VideoRequest:
    """`body`: the JSON object, or None for a multipart request (then `parts`)."""
    reference: object = None
    if parts is not None:
        values: dict[str, object] = {}
        nested: dict[str, str] = {}  # `input_reference[image_url]`: an object sent as a form
        for part in parts:
            if part.filename is not None and part.name == "input_reference":
                reference = part.data
            elif (key := _NESTED_REFERENCE.fullmatch(part.name)) and part.filename is None:
                nested[key[1]] = part.text
            else:
                values[part.name] = part.text if part.filename is None else part.data
        reference = nested or reference
        fields = Fields(values, form=True)
    elif isinstance(body, dict):
        fields = Fields(body, form=False)
        reference = body.get("input_reference")
    else:
        raise OpenAIError.invalid("body", "The request body must be a JSON object.")
    fields.reject_unknown(_PARAMS)
    prompt = fields.required_text("prompt")
    model = fields.choice("model", _MODELS, "sora-2")
    seconds = fields.choice("seconds", _SECONDS, "4")
    size = fields.choice("size", _PRO_SIZES if "-pro" in model else _SIZES, "720x1280")
    _check_reference(reference)
    return VideoRequest(model, prompt, seconds, size)


def _check_reference(reference: object) -> None:
    """A file upload (an image), or `{"image_url": url-or-data-URL}` / `{"file_id": id}`."""
    if reference is None:
        return
    if isinstance(reference, bytes):
        if not reference.startswith(_IMAGE_MAGIC):
            raise OpenAIError.invalid(
                "input_reference", "Invalid file format for 'input_reference': expected an image."
            )
        return
    if isinstance(reference, dict) and len(reference) == 1:
        url, file_id = reference.get("image_url"), reference.get("file_id")
        if isinstance(url, str) and url.startswith(("https://", "http://", "data:image/")):
            return
        if isinstance(file_id, str) and file_id:
            return
    raise OpenAIError.invalid(
        "input_reference",
        "Invalid 'input_reference': expected a file, {'image_url': ...} or {'file_id': ...}.",
    )


@dataclass
class VideoJob:
    id: str
    request: VideoRequest
    created_at: int
    #: None, or the error code the job will end with.
    fails_with: str | None
    remixed_from: str | None = None
    status: str = "queued"
    progress: int = 0
    polls: int = 0
    completed_at: int | None = None

    def as_object(self) -> dict[str, Any]:
        error = None
        if self.status == "failed":
            message = (
                "Your request was blocked by our moderation system."
                if self.fails_with == "moderation_blocked"
                else "Video generation failed."
            )
            error = {"code": self.fails_with, "message": message}
        return {
            "id": self.id,
            "object": "video",
            "model": self.request.model,
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "expires_at": self.completed_at + 3600 if self.completed_at else None,
            "seconds": self.request.seconds,
            "size": self.request.size,
            "prompt": self.request.prompt,
            "remixed_from_video_id": self.remixed_from,
            "error": error,
        }


class VideoJobs:
    """Thread-safe store of one simulated account's video jobs."""

    def __init__(self, polls_to_complete: int = 2) -> None:
        self.polls_to_complete = polls_to_complete
        self._jobs: dict[str, VideoJob] = {}  # in creation order
        self._lock = threading.Lock()

    def create(
        self, request: VideoRequest, fails_with: str | None, remixed_from: str | None = None
    ) -> VideoJob:
        # Random ids, like OpenAI's: two simulators never share one, so a gateway that polls
        # the wrong provider gets a 404 instead of someone else's job.
        job = VideoJob(
            f"video_{secrets.token_hex(16)}", request, int(time.time()), fails_with, remixed_from
        )
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                del self._jobs[next(iter(self._jobs))]
        if self.polls_to_complete <= 0:
            self._finish(job)
        return job

    def get(self, video_id: str) -> VideoJob:
        job = self._jobs.get(video_id)
        if job is None:
            raise _not_found(video_id)
        return job

    def poll(self, video_id: str) -> VideoJob:
        """The job, one step further along."""
        job = self.get(video_id)
        with self._lock:
            if job.status in ("completed", "failed"):
                return job
            job.polls += 1
            if job.polls < self.polls_to_complete:
                job.status, job.progress = "in_progress", _PROGRESS["in_progress"]
                return job
        self._finish(job)
        return job

    def _finish(self, job: VideoJob) -> None:
        with self._lock:
            if job.fails_with:
                job.status = "failed"
            else:
                job.status, job.progress = "completed", _PROGRESS["completed"]
                job.completed_at = int(time.time())

    def delete(self, video_id: str) -> None:
        with self._lock:
            if self._jobs.pop(video_id, None) is None:
                raise _not_found(video_id)

    def page(self, params: Mapping[str, str]) -> dict[str, Any]:
        """`GET /v1/videos?after=&limit=&order=` as a cursor page."""
        fields = Fields(dict(params), form=True)
        limit = fields.integer("limit", 1, 100, 20)
        order = fields.choice("order", ("asc", "desc"), "desc")
        with self._lock:
            jobs = list(self._jobs.values())
        if order == "desc":
            jobs.reverse()
        after = params.get("after")
        if after:
            ids = [job.id for job in jobs]
            if after not in ids:
                raise OpenAIError.invalid("after", f"No video found with id '{after}'.")
            jobs = jobs[ids.index(after) + 1 :]
        data = [job.as_object() for job in jobs[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(jobs) > limit,
        }
