"""Clean up after processes that died: release credit holds nobody will settle (and queue what
their image requests stored), fail video jobs that never reached the upstream, drop expired
idempotency records and the commit markers of writers long gone. And in every process, drop the
request bodies it keeps for jobs that another process finished or deleted. Then finish deleting
the accounts whose deletion waited for a request in flight (`accounts.closing`).

Every release is the same conditional update the live path uses, so two sweepers (or a sweeper
and a slow live request) never release one hold twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from ..accounts.closing import purge_deleted_accounts
from ..background_rounds import RoundLog
from ..credits import repository as credit_rows
from ..group_commit import forget_idle_markers
from ..idempotency import repository as idempotency_rows
from ..mirror.keys import is_task_id, task_prefix
from ..mirror.repository import enqueue_deletions
from ..runtime import Runtime
from ..usage import repository as usage_rows
from . import repository
from .submission import finish_failed

__all__ = ["SweepReport", "drop_ended_bodies", "run_checkpointer", "run_sweeper", "sweep_once"]

log = logging.getLogger("reapi_server.sweeper")

#: A writer's commit marker is only read right after its own failed COMMIT.
_MARKER_DAYS = 1
#: Job ids checked per query by `drop_ended_bodies`.
_ID_BATCH = 500


@dataclass(frozen=True, slots=True)
class SweepReport:
    holds_released: int
    jobs_failed: int
    idempotency_dropped: int
    bodies_dropped: int = 0
    #: Deleted accounts whose last rows went in this pass.
    accounts_removed: int = 0


async def drop_ended_bodies(rt: Runtime) -> int:
    """Forget the bodies this process keeps for jobs that are finished or gone, whoever ended
    them, and those past their age bound. How many went."""
    dropped = rt.memory.expire()
    held = rt.memory.ids()
    for start in range(0, len(held), _ID_BATCH):
        batch = held[start : start + _ID_BATCH]
        async with rt.db.read() as session:
            unfinished = await repository.unfinished_among(session, batch)
        for job_id in batch:
            if job_id not in unfinished and rt.memory.get(job_id) is not None:
                rt.memory.forget(job_id)
                dropped += 1
    return dropped


async def sweep_once(rt: Runtime) -> SweepReport:
    now = rt.now()
    released = 0
    async with rt.db.read() as session:
        stale = await credit_rows.stale_holds(session, now)
        submissions = await repository.stale_submissions(session, now)
    for hold_id, request_id, account_id in stale:
        async with rt.db.write() as session:
            await rt.db.lock_accounts(session, account_id)  # first: lock_order
            closed = await credit_rows.release_expired(session, hold_id, now)
            if closed is not None:
                await usage_rows.finish(
                    session, request_id, status="failed", error_code="interrupted"
                )
                if is_task_id(request_id):
                    # Its process died, perhaps after storing images: no row will ever point at
                    # them, so they are queued for deletion with the release.
                    await enqueue_deletions(session, [task_prefix(request_id)], now)
        if closed is not None:
            released += 1
            rt.metrics.credits_moved["released"].inc(closed.amount)
    failed = 0
    for job in submissions:
        if await finish_failed(
            rt,
            job.id,
            "interrupted",
            owner=None,
            states=("submitting",),
            lease_expired_before=now,
        ):
            failed += 1
    async with rt.db.write() as session:
        dropped = await idempotency_rows.expired(session, now)
        dropped += await idempotency_rows.abandoned(session, now)
        await forget_idle_markers(session, now - _MARKER_DAYS * 86_400)
    bodies = await drop_ended_bodies(rt)
    if released or failed:
        log.warning("swept stale work", extra={"code": f"holds={released} jobs={failed}"})
    removed = await purge_deleted_accounts(rt)
    return SweepReport(released, failed, dropped, bodies, removed)


async def run_sweeper(rt: Runtime) -> None:
    rounds = RoundLog(log, "sweep")
    while True:
        try:
            await sweep_once(rt)
        except Exception as exc:
            rounds.failed(exc)
        else:
            rounds.succeeded()
        await anyio.sleep(rt.settings.sweep_interval)


async def run_checkpointer(rt: Runtime) -> None:
    """Keep the SQLite WAL short (see `Database.checkpoint`)."""
    while True:
        try:
            await rt.db.checkpoint()
        except Exception as exc:
            log.warning("checkpoint failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.checkpoint_interval)
