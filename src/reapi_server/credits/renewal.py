"""Renewing the holds of this process's running requests (see `live`), a round every sixth of
the hold window."""

from __future__ import annotations

import logging

import anyio

from ..runtime import Runtime
from . import repository

__all__ = ["renew_live_holds", "run_hold_renewal"]

log = logging.getLogger("reapi_server.credits")

#: Rounds per window: a hold is renewed at most a third plus a sixth of its window after it was
#: set, so half of it is left as margin (a round that fails is caught up by the next).
_ROUNDS_PER_WINDOW = 6
_BATCH = 500


async def renew_live_holds(rt: Runtime) -> int:
    """One round: how many holds were renewed."""
    window = rt.settings.image_hold_seconds
    now = rt.now()
    due = rt.live_holds.due(now, window)
    renewed = 0
    for start in range(0, len(due), _BATCH):
        batch = due[start : start + _BATCH]
        async with rt.db.write() as session:
            renewed += await repository.renew_holds(session, batch, now + window)
        rt.live_holds.renewed(batch, now + window)
    return renewed


async def run_hold_renewal(rt: Runtime) -> None:
    while True:
        try:
            await renew_live_holds(rt)
        except Exception as exc:  # the next round tries again, well before the holds expire
            log.warning("hold renewal failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.image_hold_seconds / _ROUNDS_PER_WINDOW)
