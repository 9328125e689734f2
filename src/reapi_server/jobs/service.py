"""Reading, listing, downloading and deleting an account's video jobs (one, or all of them when
the account is deleted).

Another account's job id answers 404, exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reapi.catalog import Route

from ..api_keys.auth import Principal
from ..credits import repository as credit_rows
from ..credits.repository import ClosedHold
from ..errors import GatewayError, NotFound, OutputsDeleted
from ..mirror.repository import get_output, recorded_ids
from ..mirror.service import delete_queued, forget_task
from ..models import ACTIVE_JOB_STATES, StoredOutput, VideoJob
from ..runtime import Runtime
from ..usage import repository as usage_rows
from ..webhooks import outbox
from . import repository
from .render import deleted_unfinished_body, video_body
from .submission import cancel_upstream, tell_ended

__all__ = [
    "content",
    "delete",
    "delete_all",
    "list_videos",
    "replay",
    "retrieve",
    "retrieve_charged",
]


async def _outputs_deleted(session: AsyncSession, jobs: Sequence[VideoJob]) -> set[str]:
    """The completed jobs among these whose video output was deleted since (whichever way:
    /v1/files, /v1/outputs, an operator): the output rows say, the job rows keep their ids."""
    completed = {job.id: job.video_file_id for job in jobs if job.status == "completed"}
    present = await recorded_ids(session, [f for f in completed.values() if f is not None])
    return {job_id for job_id, file_id in completed.items() if file_id not in present}


async def retrieve(rt: Runtime, principal: Principal, job_id: str) -> dict[str, Any]:
    body, _ = await retrieve_charged(rt, principal, job_id)
    return body


async def retrieve_charged(
    rt: Runtime, principal: Principal, job_id: str
) -> tuple[dict[str, Any], int | None]:
    """The job, and what it was charged once its hold is closed (the charge of a completed
    job, 0 for a failed one); None while it runs (its credit is held, not charged)."""
    charged = None
    async with rt.db.read() as session:
        job = await repository.get_for_account(session, job_id, principal.account_id)
        if job is None:
            raise NotFound("no such video", param="video_id")
        deleted = await _outputs_deleted(session, [job])
        if job.hold_id is not None and job.status not in ACTIVE_JOB_STATES:
            charged = await credit_rows.charged_by(session, job.hold_id)
    return video_body(job, outputs_deleted=job.id in deleted), charged


async def replay(rt: Runtime, principal: Principal, job_id: str) -> dict[str, Any]:
    """The job an idempotent create made, as it is now; 410 `outputs_deleted` once the job was
    deleted, or finished with its video deleted since."""
    async with rt.db.read() as session:
        job = await repository.get_for_account(session, job_id, principal.account_id)
        deleted = job is None or job.id in await _outputs_deleted(session, [job])
    if deleted or job is None:
        raise OutputsDeleted.replayed()
    return video_body(job)


async def list_videos(
    rt: Runtime, principal: Principal, *, limit: int, after: str | None, order: str
) -> dict[str, Any]:
    async with rt.db.read() as session:
        cursor = None
        if after is not None:
            cursor = await repository.get_for_account(session, after, principal.account_id)
            if cursor is None:
                raise NotFound("`after` names no video of this account", param="after")
        jobs = await repository.list_for_account(
            session, principal.account_id, limit=limit + 1, after=cursor, ascending=order == "asc"
        )
        deleted = await _outputs_deleted(session, jobs[:limit])
    page = [video_body(job, outputs_deleted=job.id in deleted) for job in jobs[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(jobs) > limit,
    }


async def content(rt: Runtime, principal: Principal, job_id: str, variant: str) -> StoredOutput:
    """The stored output to serve for a finished video (its row: key and content type)."""
    async with rt.db.read() as session:
        job = await repository.get_for_account(session, job_id, principal.account_id)
        if job is None:
            raise NotFound("no such video", param="video_id")
        if job.status != "completed":
            raise GatewayError(
                "this video is not completed yet", param="video_id", code="video_not_ready"
            )
        files = {"video": job.video_file_id, "thumbnail": job.thumbnail_file_id}
        file_id = files.get(variant)  # no host makes a spritesheet
        if variant != "video" and file_id is None:
            # As the SDK refuses it in-process: the host makes none, nothing is missing.
            maker = job.provider or "its provider"
            raise GatewayError(
                f"this video has no {variant}: {maker} does not make one",
                param="variant",
                code="variant_unavailable",
            )
        if file_id is None:
            raise NotFound(f"this video has no {variant}", param="variant")
        output = await get_output(session, file_id)
    if output is None:  # the job completed with it; its row went with the output since
        what = "thumbnail" if variant == "thumbnail" else "output"
        raise OutputsDeleted(f"this video's {what} was deleted", param="video_id")
    return output


@dataclass(frozen=True, slots=True)
class _Discarded:
    """What is left to do once a deleted job's transaction has committed."""

    job_id: str
    released: ClosedHold | None
    targets: list[str]
    #: The upstream task to cancel (an unfinished job that reached its provider).
    upstream: tuple[Route, str] | None
    #: It had not ended: its watchers (events streams) hear that it has.
    unfinished: bool


async def _discard(
    session: AsyncSession, rt: Runtime, job: VideoJob, *, announce: bool
) -> _Discarded | None:
    """In the caller's transaction: release an unfinished job's hold (once: the conditional
    release loses to a poller that settled it a moment ago), delete the row and its outputs'.
    Its webhook deliveries go with it; with `announce`, an unfinished job's end is sent to its
    webhook like any other (not when its account is being deleted: its webhooks go too).
    None: the job was gone once its account was locked (another delete took it)."""
    await rt.db.lock_accounts(session, job.account_id)  # first: lock_order
    # Read again under the lock: on PostgreSQL another DELETE, or the poller ending the job,
    # may have committed since it was read. The stale row answered a second delete 200 (its
    # task cancelled and its end queued again) and sent a job completed and charged meanwhile
    # to its webhook as cancelled.
    current = await repository.reread(session, job.id)
    if current is None:
        return None
    job = current
    unfinished = job.status in ACTIVE_JOB_STATES
    closed = None
    if unfinished and job.hold_id:
        closed = await credit_rows.release(session, job.hold_id, rt.now())
        if closed is not None:  # else a poller settled it a moment ago: its usage row stands
            await usage_rows.finish(
                session,
                job.request_id,
                status="failed",
                error_code="cancelled",
                provider=job.provider,
            )
    await outbox.drop_for_video(session, job.id)
    if announce and unfinished and job.webhook_url:
        await outbox.enqueue(session, job, deleted_unfinished_body(job, rt.now()), rt.now())
    await repository.delete_job(session, job.id)
    stored = await forget_task(session, job.id, None, rt.now())
    upstream = None
    if unfinished and job.provider and job.upstream_model and job.upstream_task_id:
        route = Route(provider=job.provider, upstream_model=job.upstream_model)
        upstream = (route, job.upstream_task_id)
    return _Discarded(job.id, closed, stored[1] if stored else [], upstream, unfinished)


async def _after_discard(rt: Runtime, discarded: _Discarded) -> None:
    rt.memory.forget(discarded.job_id)
    rt.db.personal_data_deleted()
    if discarded.unfinished:
        tell_ended(rt, discarded.job_id)
    else:
        rt.job_changes.changed(discarded.job_id)
    if discarded.released is not None:
        rt.metrics.credits_moved["released"].inc(discarded.released.amount)
    # The objects go at once; they were queued with the rows, so an outage only delays it.
    await delete_queued(rt, discarded.targets)
    if discarded.upstream is not None:
        await cancel_upstream(rt, *discarded.upstream)


async def delete(rt: Runtime, principal: Principal, job_id: str) -> dict[str, Any]:
    """Delete a job and its outputs; an unfinished job is cancelled upstream and not charged."""
    async with rt.db.write() as session:
        job = await repository.get_for_account(session, job_id, principal.account_id)
        if job is None:
            raise NotFound("no such video", param="video_id")
        discarded = await _discard(session, rt, job, announce=True)
    if discarded is None:
        raise NotFound("no such video", param="video_id")
    await _after_discard(rt, discarded)
    return {"id": job_id, "object": "video.deleted", "deleted": True}


async def delete_all(rt: Runtime, account_id: str) -> int:
    """Delete every video job of an account (being deleted) as `delete` does each: running
    ones cancelled upstream with their holds released. How many went."""
    async with rt.db.read() as session:
        job_ids = [job.id for job in await repository.all_for_account(session, account_id)]
    deleted = 0
    for job_id in job_ids:
        async with rt.db.write() as session:
            job = await repository.get_for_account(session, job_id, account_id)
            if job is None:  # gone meanwhile (a DELETE, the retention job)
                continue
            discarded = await _discard(session, rt, job, announce=False)
        if discarded is None:
            continue
        await _after_discard(rt, discarded)
        deleted += 1
    return deleted
