"""The background poller: takes due jobs under a lease, asks the upstream how each is doing, and
on a final state mirrors the output and settles, or releases the hold — each exactly once.

- A poll that fails (timeout, 5xx) only reschedules with backoff: money moves on final states only.
- A task that failed upstream is resubmitted once to another route if this process still holds
  the request body in memory; otherwise the job fails and its hold is released.
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
from reapi.providers import GeneratedFile, TaskStatus

from ..credits import repository as credit_rows
from ..errors import GatewayError
from ..mirror.outputs import MirroredFile, discard, mirror
from ..mirror.repository import insert_outputs
from ..mirror.service import discard_unrecorded
from ..models import VideoJob
from ..runtime import Runtime
from ..usage import repository as usage_rows
from . import repository
from .repository import POLLED_STATES
from .submission import finish_failed, submit

__all__ = ["JobPoller"]

log = logging.getLogger("reapi_server.jobs")

#: Fetch or storage failures of a finished task before the job is failed and refunded.
MAX_OUTPUT_FAILURES = 10


class _LeaseLost(Exception):
    pass


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
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:  # a database hiccup must not end the loop
                log.error("poller round failed", extra={"code": type(exc).__name__})
                handled = 0
            if not handled:
                await anyio.sleep(min(self.rt.settings.poll_interval, 1.0))

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
        if route.provider not in rt.core.connections or not job.upstream_task_id:
            await self._reschedule(job, failed=True)
            return
        try:
            status: TaskStatus = await rt.engine.drive(
                rt.core.adapter(route).poll_video(route, job.upstream_task_id),
                route.provider,
                rt.router.first_byte_timeout(route),
            )
        except ReapiError as error:
            log.info("poll failed", extra={"job_id": job.id, "code": error.code})
            await self._reschedule(job, failed=True)
            return
        if status.state == "completed":
            await self._complete(job, route, status)
        elif status.state == "failed":
            await self._failed(job, route, status)
        else:
            await self._reschedule(job, failed=False, status=status)

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
                await repository.update_if(
                    session, job.id, owner=rt.instance_id, states=POLLED_STATES, **values
                )

    async def _fetch(self, route: Route, file: GeneratedFile | None) -> bytes | None:
        if file is None or file.fetch is None:
            return file.data if file is not None else None
        rt = self.rt
        reply = await rt.engine.send(
            file.fetch, route.provider, rt.router.first_byte_timeout(route)
        )
        rt.core.adapter(route).check(reply)
        return reply.content

    async def _complete(self, job: VideoJob, route: Route, status: TaskStatus) -> None:
        rt = self.rt
        video = status.outputs[0] if status.outputs else None
        try:
            video_bytes = await self._fetch(route, video)
            thumb_bytes = await self._fetch(route, status.thumbnail)
            if video is None or video_bytes is None:
                raise GatewayError("no video in the finished task", code="upstream_bad_response")
            files = [("video", video_bytes, video.content_type)]
            if status.thumbnail is not None and thumb_bytes is not None:
                files.append(("thumbnail", thumb_bytes, status.thumbnail.content_type))
            mirrored = await mirror(rt.store, files)
        except (ReapiError, GatewayError) as error:
            log.info("output not stored yet", extra={"job_id": job.id, "code": error.code})
            if job.poll_failures + 1 >= MAX_OUTPUT_FAILURES:
                await finish_failed(
                    rt, job.id, "output_unavailable", owner=rt.instance_id, states=POLLED_STATES
                )
            else:
                await self._reschedule(job, failed=True)
            return
        try:
            await self._settle(job, mirrored, status)
        except BaseException:
            await discard_unrecorded(rt, mirrored)
            raise

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
                        raise _LeaseLost
                    if job.hold_id:
                        closed = await credit_rows.settle(session, job.hold_id, job.cost, now)
                    await insert_outputs(session, mirrored, job.account_id, now, job_id=job.id)
                    await usage_rows.finish(
                        session,
                        job.request_id,
                        status="succeeded",
                        credit_cost=closed.charged if closed else 0,
                        provider=job.provider,
                        attempts=job.attempts,
                        duration_ms=int((now - job.created_at) * 1000),
                    )
            except _LeaseLost:
                # Deleted, or taken over by another worker: our copy of the output is not needed.
                await discard(rt.store, mirrored)
                return
        rt.memory.forget(job.id)
        rt.metrics.video_jobs.labels("completed").inc()
        if closed is not None:
            rt.metrics.credits.labels("charged").inc(closed.charged)

    async def _failed(self, job: VideoJob, route: Route, status: TaskStatus) -> None:
        rt = self.rt
        remembered = rt.memory.get(job.id)
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
