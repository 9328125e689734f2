"""A job row as OpenAI's video object (every field OpenAI lists is present; `prompt` is always
null because the gateway keeps none)."""

from __future__ import annotations

from typing import Any

from ..models import VideoJob

__all__ = ["deleted_unfinished_body", "video_body"]

_FAILURE_TEXT = {
    "content_policy_violation": "the provider blocked this video under its content policy",
    "cancelled": "the video was deleted before it finished",
    "interrupted": "the gateway restarted before the provider took this video; nothing was charged",
    "output_unavailable": "the provider's output could not be fetched; nothing was charged",
    "deadline_exceeded": "the video did not finish within the gateway's deadline; "
    "nothing was charged",
    "storage_unavailable": "the gateway could not store the output; nothing was charged",
}


def _public_status(status: str) -> str:
    return "queued" if status == "submitting" else status


def _error(code: str) -> dict[str, str]:
    return {
        "code": code,
        "message": _FAILURE_TEXT.get(code, "the provider could not generate this video"),
    }


def video_body(job: VideoJob, *, outputs_deleted: bool = False) -> dict[str, Any]:
    """`outputs_deleted`: the job completed, and its video was deleted since (by its owner,
    through /v1/files or /v1/outputs): its content answers 410."""
    error = None
    if job.status == "failed":
        error = _error(job.error_code or "generation_failed")
    return {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": _public_status(job.status),
        "progress": 100 if job.status == "completed" else job.progress,
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "expires_at": None,
        "prompt": None,
        "size": job.size or "auto",
        "seconds": str(job.seconds) if job.seconds else "0",
        "remixed_from_video_id": None,
        "error": error,
        "reapi": {
            "provider": job.provider,
            "route": f"{job.provider}/{job.upstream_model}" if job.provider else None,
            "attempts": job.attempts,
            "outputs_deleted": outputs_deleted,
        },
    }


def deleted_unfinished_body(job: VideoJob, now: float) -> dict[str, Any]:
    """An unfinished job deleted by its owner, as its last state: failed, `cancelled`."""
    body = video_body(job)
    body.update(status="failed", completed_at=int(now), error=_error("cancelled"))
    return body
