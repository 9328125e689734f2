"""Clean up after processes that died: release credit holds nobody will settle, fail video jobs
that never reached the upstream, and drop expired idempotency records. Then finish deleting the
accounts whose deletion waited for a request in flight (`accounts.closing`).

Every release is the same conditional update the live path uses, so two sweepers (or a sweeper
and a slow live request) never release one hold twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from ..accounts.closing import purge_deleted_accounts
from ..credits import repository as credit_rows
from ..idempotency import repository as idempotency_rows
from ..runtime import Runtime
from ..usage import repository as usage_rows
from . import repository
from .submission import finish_failed

__all__ = ["SweepReport", "run_checkpointer", "run_sweeper", "sweep_once"]

log = logging.getLogger("reapi_server.sweeper")


@dataclass(frozen=True, slots=True)
class SweepReport:
    holds_released: int
    jobs_failed: int
    idempotency_dropped: int
    #: Deleted accounts whose last rows went in this pass.
    accounts_removed: int = 0


async def sweep_once(rt: Runtime) -> SweepReport:
    now = rt.now()
    released = 0
    async with rt.db.read() as session:
        stale = await credit_rows.stale_holds(session, now)
        submissions = await repository.stale_submissions(session, now)
    for hold_id, request_id in stale:
        async with rt.db.write() as session:
            closed = await credit_rows.release(session, hold_id, now)
            if closed is not None:
                await usage_rows.finish(
                    session, request_id, status="failed", error_code="interrupted"
                )
        if closed is not None:
            released += 1
            rt.metrics.credits.labels("released").inc(closed.amount)
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
        dropped += await idempotency_rows.abandoned(session, now - rt.settings.image_hold_seconds)
    if released or failed:
        log.warning("swept stale work", extra={"code": f"holds={released} jobs={failed}"})
    removed = await purge_deleted_accounts(rt)
    return SweepReport(released, failed, dropped, removed)


async def run_sweeper(rt: Runtime) -> None:
    while True:
        try:
            await sweep_once(rt)
        except Exception as exc:
            log.error("sweep failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.sweep_interval)


async def run_checkpointer(rt: Runtime) -> None:
    """Keep the SQLite WAL short (see `Database.checkpoint`)."""
    while True:
        try:
            await rt.db.checkpoint()
        except Exception as exc:
            log.warning("checkpoint failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.checkpoint_interval)
