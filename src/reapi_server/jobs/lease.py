"""Keeping a video job's lease while its output is mirrored: a large download can outlast the
lease, and another worker must not take the job over while this one is still storing it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from reapi.core import detached

from ..runtime import Runtime
from . import repository
from .repository import POLLED_STATES

__all__ = ["LeaseLost", "hand_back_leases", "kept_lease"]

log = logging.getLogger("reapi_server.jobs")


class LeaseLost(Exception):
    """Another worker owns the job now, or it was deleted: this worker must leave it alone."""


@asynccontextmanager
async def kept_lease(rt: Runtime, job_id: str) -> AsyncIterator[None]:
    """Renew this process's lease every third of its length while the block runs. If a renewal
    finds the lease gone, the block is cancelled and `LeaseLost` raised."""
    lost = False

    async def renew() -> None:
        nonlocal lost
        lease = rt.settings.job_lease_seconds
        while True:
            await anyio.sleep(lease / 3)
            try:
                async with rt.db.write() as session:
                    kept = await repository.update_if(
                        session,
                        job_id,
                        owner=rt.instance_id,
                        states=POLLED_STATES,
                        lease_expires_at=rt.now() + lease,
                    )
            except Exception as exc:  # try again at the next beat; the lease still runs
                log.warning("lease renewal failed", extra={"code": type(exc).__name__})
                continue
            if not kept:
                lost = True
                group.cancel_scope.cancel()
                return

    single: BaseException | None = None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(renew)
            yield
            group.cancel_scope.cancel()
    except BaseExceptionGroup as grouped:  # the block's own error, as the caller expects it
        if len(grouped.exceptions) != 1:
            raise
        single = grouped.exceptions[0]
    if single is not None:
        raise detached(single)
    if lost:
        raise LeaseLost


async def hand_back_leases(rt: Runtime) -> None:
    """This process stops: the jobs it polls are due now for the other instances, which are
    woken to take them (over Redis) instead of waiting for the leases to run out."""
    from .poller import JOBS_DUE

    try:
        async with rt.db.write() as session:
            handed = await repository.hand_back(session, rt.instance_id, rt.now())
    except Exception as exc:  # they run out by themselves (job_lease_seconds)
        log.warning("leases not handed back", extra={"code": type(exc).__name__})
        return
    if handed:
        log.info("leases handed back", extra={"code": f"jobs={handed}"})
        rt.wakeups.notify(JOBS_DUE)
        if rt.bus is not None:
            await rt.bus.flush()
