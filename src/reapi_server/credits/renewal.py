"""Renewing what marks this process's requests as running, a round every sixth of the hold
window: the credit holds of its image requests (see `live`) and the idempotency records it has
claimed (see `idempotency.local`), in one transaction."""

from __future__ import annotations

import logging

import anyio

from ..idempotency import repository as idempotency_rows
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
    holds = rt.live_holds.due(now, window)
    claims = rt.idempotency_claims.due(now, window)
    renewed = 0
    for start in range(0, max(len(holds), len(claims)), _BATCH):
        hold_batch = holds[start : start + _BATCH]
        claim_batch = claims[start : start + _BATCH]
        async with rt.db.write() as session:
            holds_renewed = await repository.renew_holds(session, hold_batch, now + window)
            claims_renewed = await idempotency_rows.renew(session, claim_batch, now + window)
        # Those skipped (in use, or closed) stay due: tried again next round.
        rt.live_holds.renewed(holds_renewed, now + window)
        rt.idempotency_claims.renewed(claims_renewed, now + window)
        renewed += len(holds_renewed)
    return renewed


async def run_hold_renewal(rt: Runtime) -> None:
    while True:
        try:
            await renew_live_holds(rt)
        except Exception as exc:  # the next round tries again, well before the holds expire
            log.warning("hold renewal failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.image_hold_seconds / _ROUNDS_PER_WINDOW)
