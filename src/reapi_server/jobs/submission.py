"""Starting video jobs, and failing them (with their hold released) exactly once.

Create: in one transaction (a group commit, shared with concurrent requests) the per-key job
limit is checked, credit is held, the job row is written as `submitting` (leased to this
process) with a pending usage row. Then the inputs the request names by URL or file id are
loaded (never before: see `references.service`), and the core's failover loop submits the task;
its id is written back (with an Idempotency-Key, the answer in the same transaction: from then on
the job will be charged), or the job fails and the hold is released. A process that dies in
between leaves a `submitting` row whose lease expires: the sweeper releases its hold.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from reapi import ReapiError
from reapi.catalog import Route, video_size_label
from reapi.core import Payload, PreparedVideo, RememberedJob, VideoParams

from ..accounts import repository as accounts
from ..api_keys.auth import Principal
from ..credits import repository as credit_rows
from ..credits.service import hold_or_record_refusal, price_of
from ..errors import AccountClosed, GatewayError, NotFound, RateLimited
from ..group_commit import Tx
from ..idempotency.service import RecordAnswer
from ..ids import new_id
from ..models import ACTIVE_JOB_STATES, VideoJob
from ..observability.middleware import RequestContext
from ..references.service import has_references, resolve
from ..runtime import Runtime
from ..usage import repository as usage_rows
from ..usage.outcomes import error_code, failed_attempts, record_refusal
from ..usage.service import new_row
from ..webhooks import outbox
from ..webhooks.service import CheckedUrl
from . import repository
from .render import video_body

__all__ = [
    "announce_end",
    "cancel_upstream",
    "create",
    "finish_failed",
    "replay_snapshot",
    "submit",
    "tell_ended",
]

log = logging.getLogger("reapi_server.jobs")
ENDPOINT = "videos.create"


async def announce_end(session: AsyncSession, job_id: str, now: float) -> None:
    """In the transaction that made the job final: queue its webhook (when it has a URL) with
    the job as it now is, so that the end and its announcement commit together."""
    job = await repository.reread(session, job_id)
    if job is not None:
        await outbox.enqueue(session, job, video_body(job), now)


def tell_ended(rt: Runtime, job_id: str) -> None:
    """After the final state committed: wake the job's event streams and the webhook sender."""
    rt.job_changes.changed(job_id)
    rt.webhook_wakeup.fire()


def replay_snapshot(job_id: str) -> dict[str, Any]:
    """What an idempotent create records: the job, whose current state a replay answers."""
    return {"kind": "video", "id": job_id}


async def create(
    rt: Runtime,
    principal: Principal,
    context: RequestContext,
    params: VideoParams,
    payload: Payload,
    *,
    record: RecordAnswer | None = None,
    webhook: CheckedUrl | None = None,
) -> dict[str, Any]:
    """`webhook`: where the job's end is announced (else the key's default, if any)."""
    started = time.perf_counter()
    try:
        principal.require_model(params.model)
        prepared = rt.core.prepare_video(params, payload)
    except (ReapiError, GatewayError) as error:
        await record_refusal(rt, principal, context, params.model, ENDPOINT, error.code, started)
        raise
    context.model = prepared.spec.id
    cost = price_of(prepared.spec, prepared.shape)
    limit = principal.max_concurrent_videos or rt.settings.max_concurrent_videos
    job_id = new_id("video")
    now = rt.now()
    job = VideoJob(
        id=job_id,
        account_id=principal.account_id,
        api_key_id=principal.key_id,
        request_id=context.request_id,
        model=prepared.spec.id,
        status="submitting",
        progress=0,
        seconds=prepared.shape.seconds,
        size=video_size_label(prepared.spec, prepared.shape),
        cost=cost,
        attempts=0,
        lease_owner=rt.instance_id,
        lease_expires_at=now + rt.settings.job_lease_seconds,
        next_poll_at=now,
        poll_failures=0,
        created_at=now,
        webhook_url=webhook.url if webhook is not None else principal.webhook_url,
    )
    usage = new_row(
        principal,
        context.request_id,
        model=prepared.spec.id,
        endpoint=ENDPOINT,
        status="pending",
        now=now,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )

    async def open_job(tx: Tx) -> GatewayError | None:
        """Check the key's job limit, hold credit, write the job and usage rows: one
        transaction. A refusal is written as the usage row and returned (not raised)."""
        if not await accounts.is_open(tx, principal.account_id):
            return AccountClosed()  # being deleted: no row may point at it any more
        if await repository.active_videos(tx, principal.key_id) >= limit:
            refusal = RateLimited(
                f"this key already has {limit} video jobs in progress",
                code="too_many_concurrent_jobs",
                retry_after=max(math.ceil(rt.settings.poll_interval * 2), 1),
            )
            usage.status, usage.error_code = "failed", refusal.code
            await usage_rows.insert(tx, usage)
            return refusal
        hold_id = await hold_or_record_refusal(
            tx, usage, cost, purpose="video", expires_at=None, now=now, key=principal.spend(now)
        )
        if isinstance(hold_id, GatewayError):
            return hold_id
        job.hold_id = hold_id
        await repository.insert(tx, job)
        return None

    # At once: the upstream call waits for it (see `group_commit`).
    refused = await rt.db.grouped(open_job, account=principal.account_id, at_once=True)
    if refused is not None:
        raise refused
    rt.metrics.credits_moved["reserved"].inc(cost)
    if has_references(prepared.payload) or prepared.spec.capabilities.input_video:
        prepared = await _with_inputs(rt, principal, job_id, prepared)
    remembered = RememberedJob(prepared)
    # Kept from before the submission, so that a poll of the new task never finds it missing.
    rt.memory.remember(job_id, remembered)
    job = await submit(
        rt,
        job_id,
        principal.account_id,
        remembered,
        prepared.routes,
        states=("submitting",),
        started=started,
        record=record,
    )
    if not remembered.next_routes():
        rt.memory.forget(job_id)  # no route left to resubmit to
    context.provider, context.attempts = job.provider, job.attempts
    return video_body(job)


async def _with_inputs(
    rt: Runtime, principal: Principal, job_id: str, prepared: PreparedVideo
) -> PreparedVideo:
    """The request with its references loaded and, for an enhancement model, its source vetted
    once for every route (`LocalCore.vet_video`: the length the price covers, from these bytes);
    a refusal fails the job (its hold released)."""
    try:
        if has_references(prepared.payload):
            prepared = replace(prepared, payload=await resolve(rt, principal, prepared.payload))
        first = prepared.routes[0]
        return await rt.engine.drive(
            rt.core.vet_video(prepared), first.provider, rt.router.first_byte_timeout(first)
        )
    except BaseException as error:
        await _fail_or_keep(rt, job_id, error_code(error), states=("submitting",))
        raise


async def submit(
    rt: Runtime,
    job_id: str,
    account_id: str,
    remembered: RememberedJob,
    routes: tuple[Route, ...],
    *,
    states: tuple[str, ...],
    started: float,
    previous_attempts: int = 0,
    record: RecordAnswer | None = None,
) -> VideoJob:
    """Run the core's failover loop to start the task; record its id, or fail the job.
    `record`: the create call's Idempotency-Key, answered (with the job) once the task is known."""
    prepared = remembered.prepared

    async def attempt(route: Route) -> str:
        return await rt.engine.drive(
            rt.core.video_attempt(prepared, route),
            route.provider,
            rt.router.first_byte_timeout(route),
        )

    try:
        outcome = await rt.engine.run(routes, attempt)
    except BaseException as error:
        provider, attempts = failed_attempts(error)
        await _fail_or_keep(
            rt,
            job_id,
            error_code(error),
            states=states,
            provider=provider,
            attempts=previous_attempts + attempts,
        )
        raise
    rt.metrics.record_attempts(prepared.spec.id, ((a.provider, a.code) for a in outcome.attempts))
    remembered.tried.add(outcome.route.key)
    now = rt.now()
    attempts = previous_attempts + len(outcome.attempts)

    async def record_task(tx: Tx) -> tuple[bool, VideoJob | None]:
        updated = await repository.mark_submitted(
            tx,
            job_id,
            states=states,
            provider=outcome.route.provider,
            upstream_model=outcome.route.upstream_model,
            upstream_task_id=outcome.result,
            attempts=attempts,
            next_poll_at=now + rt.settings.poll_interval,
        )
        if updated and record is not None:
            await record(tx, 200, replay_snapshot(job_id))
        return updated, await repository.get_detached(tx, job_id)

    updated, job = await rt.db.grouped(record_task, account=account_id)
    if updated:
        rt.job_changes.changed(job_id)  # submitting → queued
    if not updated:
        # Deleted, or failed (say, swept) while we were submitting: its hold is already
        # released and nobody will poll the new task, so stop it instead of leaving it running.
        rt.memory.forget(job_id)
        await cancel_upstream(rt, outcome.route, outcome.result)
    if job is not None and not updated:
        log.warning("job changed while submitting", extra={"job_id": job_id})
    if job is None:
        raise NotFound("no such video", param="video_id")
    return job


async def _fail_or_keep(
    rt: Runtime,
    job_id: str,
    code: str,
    *,
    states: tuple[str, ...],
    provider: str | None = None,
    attempts: int | None = None,
) -> None:
    """`finish_failed` for a submission that failed. One that meets an unavailable database
    raises as before (the request answers its error), and is kept with the image requests'
    releases (`credits.pending`), tried again each second: the hold comes back within a second
    of the database rather than when the job's lease expires for the sweeper (minutes)."""

    async def fail() -> None:
        await finish_failed(
            rt, job_id, code, states=states, owner=None, provider=provider, attempts=attempts
        )

    await rt.pending_releases.release_or_keep(
        job_id, fail, logger=log, about={"job_id": job_id}, reraise=True
    )


async def finish_failed(
    rt: Runtime,
    job_id: str,
    code: str,
    *,
    states: tuple[str, ...] = ACTIVE_JOB_STATES,
    owner: str | None,
    provider: str | None = None,
    attempts: int | None = None,
    lease_expired_before: float | None = None,
) -> bool:
    """Mark a job failed and release its hold: both once, whoever gets here first. Its body
    goes either way: whoever failed it, nothing will be resubmitted."""
    rt.memory.forget(job_id)
    with anyio.CancelScope(shield=True):
        async with rt.db.write() as session:
            job = await repository.get(session, job_id)
            if job is None:
                return False
            await rt.db.lock_accounts(session, job.account_id)  # first: lock_order
            values: dict[str, Any] = {
                "status": "failed",
                "error_code": code,
                "completed_at": rt.now(),
                "lease_owner": None,
                "lease_expires_at": None,
            }
            if provider is not None:
                values["provider"] = provider
            if attempts is not None:
                values["attempts"] = attempts
            changed = await repository.update_if(
                session,
                job_id,
                owner=owner,
                states=states,
                lease_expired_before=lease_expired_before,
                **values,
            )
            if not changed:
                return False
            closed = (
                await credit_rows.release(session, job.hold_id, rt.now()) if job.hold_id else None
            )
            await usage_rows.finish(
                session,
                job.request_id,
                status="failed",
                error_code=code,
                provider=provider or job.provider,
                attempts=attempts if attempts is not None else job.attempts,
                duration_ms=int((rt.now() - job.created_at) * 1000),
            )
            if job.webhook_url:
                await announce_end(session, job_id, rt.now())
    tell_ended(rt, job_id)
    rt.metrics.video_jobs.labels("failed").inc()
    if closed is not None:
        rt.metrics.credits_moved["released"].inc(closed.amount)
    return True


async def cancel_upstream(rt: Runtime, route: Route, task_id: str) -> None:
    if route.provider not in rt.core.connections:
        return
    try:
        await rt.engine.drive(
            rt.core.adapter(route).cancel_video(route, task_id),
            route.provider,
            rt.router.first_byte_timeout(route),
        )
    except ReapiError as error:  # best effort: the job is already gone and uncharged
        log.info("upstream cancel failed", extra={"code": error.code, "provider": route.provider})
