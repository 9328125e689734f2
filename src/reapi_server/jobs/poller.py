"""The background poller: takes due jobs under a lease, asks the upstream how each is doing, and
on a final state mirrors the output and settles, or releases the hold — each exactly once.

- A poll that fails (timeout, 5xx) only reschedules with backoff: money moves on final states only.
- A job still unfinished at its deadline (`video_job_deadline_seconds` after it was created) is
  failed instead of polled again: its task is cancelled upstream and its hold released.
- A task that failed upstream is resubmitted once to another route if this process still holds
  the request body in memory (`memory`); otherwise the job fails and its hold is released. A task
  that completed cannot be resubmitted any more: its body is dropped before its output is stored.
- Every write is conditional on this process still holding the lease, so a worker that stalled
  past its lease cannot overwrite the worker that took the job over.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio

from reapi import JobFailedError, ReapiError
from reapi.catalog import Route
from reapi.providers import TaskStatus

from ..background_rounds import RoundLog
from ..credits import repository as credit_rows
from ..errors import GatewayError, StorageUnavailable
from ..mirror.fetch import upstream_body
from ..mirror.outputs import MirroredFile, Output, mirror
from ..mirror.repository import insert_outputs
from ..mirror.service import delete_task_outputs
from ..models import VideoJob
from ..runtime import Runtime
from ..usage import repository as usage_rows
from . import repository
from .lease import LeaseLost, kept_lease
from .repository import POLLED_STATES
from .submission import announce_end, cancel_upstream, finish_failed, submit, tell_ended

__all__ = ["JOBS_DUE", "JobPoller"]

log = logging.getLogger("reapi_server.jobs")

#: The wake-up topic of jobs that are due now (`Runtime.wakeups`).
JOBS_DUE = "jobs-due"
#: Fetch or storage failures of a finished task before the job is failed and refunded.
MAX_OUTPUT_FAILURES = 10


def _reported_shape(status: TaskStatus) -> dict[str, Any]:
    """What the upstream says it made, when it says (it may differ from what was asked)."""
    reported: dict[str, Any] = {}
    if status.size:
        reported["size"] = status.size[:32]
    if status.seconds:
        reported["seconds"] = status.seconds
    return reported


class JobPoller:
    def __init__(self, rt: Runtime, *, batch: int = 16) -> None:
        self.rt = rt
        self.batch = batch

    async def run_forever(self) -> None:
        rounds = RoundLog(log, "poller round")
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:  # a database hiccup must not end the loop
                rounds.failed(exc)
                handled = 0
            else:
                rounds.succeeded()
            if not handled:  # a job handed back (another instance drains) wakes it at once
                await self.rt.wakeups.wait(JOBS_DUE, min(self.rt.settings.poll_interval, 1.0))

    async def run_once(self) -> int:
        rt = self.rt
        now = rt.now()
        async with rt.db.write() as session:
            jobs = await repository.claim_due(
                session, rt.instance_id, now, now + rt.settings.job_lease_seconds, self.batch
            )
        if jobs:
            async with anyio.create_task_group() as group:
                for job in jobs:
                    group.start_soon(self._guarded, job)
        return len(jobs)

    async def _guarded(self, job: VideoJob) -> None:
        try:
            await self._handle(job)
        except Exception as exc:
            log.error("job handling failed", extra={"job_id": job.id, "code": type(exc).__name__})
            await self._reschedule(job, failed=True)

    def _route(self, job: VideoJob) -> Route:
        spec = self.rt.catalog.models.get(job.model)
        for route in spec.routes if spec else ():
            if route.provider == job.provider and route.upstream_model == job.upstream_model:
                return route
        return Route(provider=job.provider or "", upstream_model=job.upstream_model or "")

    async def _handle(self, job: VideoJob) -> None:
        rt = self.rt
        route = self._route(job)
        if rt.now() >= job.created_at + rt.settings.video_job_deadline_seconds:
            await self._expire(job, route)
            return
        if route.provider not in rt.core.connections or not job.upstream_task_id:
            await self._reschedule(job, failed=True)
            return
        try:
            status: TaskStatus = await rt.engine.drive(
                rt.core.poll_video(route, job.upstream_task_id),
                route.provider,
                rt.router.first_byte_timeout(route),
            )
        except ReapiError as error:
            log.info("poll failed", extra={"job_id": job.id, "code": error.code})
            await self._reschedule(job, failed=True)
            return
        if status.state == "completed":
            rt.memory.forget(job.id)
            await self._complete(job, route, status)
        elif status.state == "failed":
            await self._failed(job, route, status)
        else:
            await self._reschedule(job, failed=False, status=status)

    async def _expire(self, job: VideoJob, route: Route) -> None:
        """Past its deadline: fail the job (releasing its hold once), stop its task upstream, and
        delete whatever an unfinished attempt to store its output left."""
        rt = self.rt
        if not await finish_failed(
            rt, job.id, "deadline_exceeded", owner=rt.instance_id, states=POLLED_STATES
        ):
            return
        log.info("job deadline passed", extra={"job_id": job.id})
        await delete_task_outputs(rt, job.id, None)
        if job.upstream_task_id:
            await cancel_upstream(rt, route, job.upstream_task_id)

    async def _reschedule(
        self, job: VideoJob, *, failed: bool, status: TaskStatus | None = None
    ) -> None:
        rt, settings = self.rt, self.rt.settings
        failures = job.poll_failures + 1 if failed else 0
        wait = settings.poll_interval
        if failed:
            wait = min(settings.poll_interval * 2 ** min(failures, 10), settings.max_poll_backoff)
        elif status is not None and status.poll_after is not None:
            wait = max(min(status.poll_after, settings.max_poll_backoff), 0.0)
        values: dict[str, Any] = {
            "next_poll_at": rt.now() + wait,
            "poll_failures": failures,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if status is not None:
            values["status"] = status.state
            values["progress"] = max(min(status.progress, 99), 0)
        with anyio.CancelScope(shield=True):
            async with rt.db.write() as session:
                changed = await repository.update_if(
                    session, job.id, owner=rt.instance_id, states=POLLED_STATES, **values
                )
        if changed and status is not None:
            rt.job_changes.changed(job.id)

    def _outputs(self, route: Route, status: TaskStatus) -> list[Output]:
        """The video, then its thumbnail when there is one: streamed from the upstream into
        storage (never read whole), each request sent only when its turn comes."""
        video = status.outputs[0] if status.outputs else None
        body = upstream_body(self.rt, route, video) if video is not None else None
        if video is None or body is None:
            raise GatewayError("no video in the finished task", code="upstream_bad_response")
        outputs = [Output("video", body)]
        thumbnail = status.thumbnail
        thumb_body = upstream_body(self.rt, route, thumbnail) if thumbnail is not None else None
        if thumbnail is not None and thumb_body is not None:
            outputs.append(Output("thumbnail", thumb_body))
        return outputs

    async def _complete(self, job: VideoJob, route: Route, status: TaskStatus) -> None:
        """Store the output, then settle. Keys are the job's own (`outputs/<job id>/…`), so a
        retry rewrites what a failed attempt left, and nothing here deletes objects: another
        worker may be storing the same keys. A job that fails for good has them deleted."""
        rt = self.rt
        try:
            async with kept_lease(rt, job.id):
                mirrored = await mirror(
                    rt.store, rt.output_names, job.id, self._outputs(route, status)
                )
        except LeaseLost:
            log.info("lease lost while storing", extra={"job_id": job.id})
            await self._clean_if_over(job.id)
            return
        except (ReapiError, GatewayError) as error:
            log.info("output not stored yet", extra={"job_id": job.id, "code": error.code})
            if job.poll_failures + 1 < MAX_OUTPUT_FAILURES:
                await self._reschedule(job, failed=True)
            elif await finish_failed(
                rt,
                job.id,
                # The last failure names the cause: our storage, or the upstream's download.
                error.code if isinstance(error, StorageUnavailable) else "output_unavailable",
                owner=rt.instance_id,
                states=POLLED_STATES,
            ):
                await delete_task_outputs(rt, job.id, None)
            return
        await self._settle(job, mirrored, status)

    async def _clean_if_over(self, job_id: str) -> None:
        """After losing a job: if it is gone or failed, nobody will record its objects."""
        async with self.rt.db.read() as session:
            job = await repository.get(session, job_id)
        if job is None or job.status == "failed":
            await delete_task_outputs(self.rt, job_id, None)

    async def _settle(
        self, job: VideoJob, mirrored: list[MirroredFile], status: TaskStatus
    ) -> None:
        rt = self.rt
        now = rt.now()
        by_kind = {f.kind: f.file_id for f in mirrored}
        closed = None
        with anyio.CancelScope(shield=True):
            try:
                async with rt.db.write() as session:
                    await rt.db.lock_accounts(session, job.account_id)  # first: lock_order
                    if not await repository.update_if(
                        session,
                        job.id,
                        owner=rt.instance_id,
                        states=POLLED_STATES,
                        **_reported_shape(status),
                        status="completed",
                        progress=100,
                        completed_at=now,
                        video_file_id=by_kind.get("video"),
                        thumbnail_file_id=by_kind.get("thumbnail"),
                        lease_owner=None,
                        lease_expires_at=None,
                    ):
                        raise LeaseLost
                    if job.hold_id:
                        closed = await credit_rows.settle(session, job.hold_id, job.cost, now)
                    await insert_outputs(session, mirrored, job.account_id, now)
                    await usage_rows.finish(
                        session,
                        job.request_id,
                        status="succeeded",
                        credit_cost=closed.charged if closed else 0,
                        provider=job.provider,
                        attempts=job.attempts,
                        duration_ms=int((now - job.created_at) * 1000),
                    )
                    if job.webhook_url:
                        await announce_end(session, job.id, now)
            except LeaseLost:
                # Deleted, or taken over by another worker (who stores the same keys).
                await self._clean_if_over(job.id)
                return
        tell_ended(rt, job.id)
        rt.memory.forget(job.id)
        rt.metrics.video_jobs.labels("completed").inc()
        rt.alerts.observe(closed)
        if closed is not None:
            rt.metrics.credits_moved["charged"].inc(closed.charged)
            rt.auto_top_up.spent(job.account_id)

    async def _failed(self, job: VideoJob, route: Route, status: TaskStatus) -> None:
        rt = self.rt
        # Taken, not read: after this, the body is not needed any more, whatever happens.
        remembered = rt.memory.take(job.id)
        if not status.content_blocked:
            rt.router.record_failure(
                route, JobFailedError("task failed upstream", provider=route.provider)
            )
        if not status.content_blocked and remembered is not None:
            remaining = remembered.next_routes()
            if remaining:
                remembered.resubmitted = True
                try:
                    await submit(
                        rt,
                        job.id,
                        job.account_id,
                        remembered,
                        remaining,
                        states=POLLED_STATES,
                        started=time.perf_counter(),
                        previous_attempts=job.attempts,
                    )
                except (ReapiError, GatewayError) as error:
                    log.info("resubmission failed", extra={"job_id": job.id, "code": error.code})
                return
        await finish_failed(
            rt,
            job.id,
            status.error_code or "generation_failed",
            owner=rt.instance_id,
            states=POLLED_STATES,
        )
