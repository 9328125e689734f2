"""Deleting what identity no longer needs: ended sessions, used or expired one-time tokens,
throttle windows that have run out, devices unseen for 90 days, sign-ins with a provider that
never came back. Run by every server process now and then; idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from ..db import Database
from ..oauth import repository as oauth_requests
from . import repository
from .devices import KNOWN_FOR
from .sessions import DAY, SessionPolicy
from .throttle import RESET_PER_EMAIL, SIGN_IN_PER_EMAIL, SIGN_UP_PER_ADDRESS

__all__ = ["purge_once", "run_housekeeping"]

log = logging.getLogger("reapi_server.identity")

#: The longest throttle window: a row older than this counts for nothing.
_LONGEST_WINDOW = max(r.window for r in (SIGN_IN_PER_EMAIL, SIGN_UP_PER_ADDRESS, RESET_PER_EMAIL))


async def purge_once(db: Database, policy: SessionPolicy, now: float) -> int:
    async with db.write() as session:
        removed = await repository.delete_expired_sessions(
            session, now=now, idle_cutoff=now - policy.idle_seconds
        )
        # Used or expired, a token answers the same; it goes a day after its expiry.
        removed += await repository.delete_stale_tokens(session, now - DAY)
        removed += await repository.delete_stale_throttles(session, now - _LONGEST_WINDOW)
        removed += await repository.delete_stale_devices(session, now - KNOWN_FOR)
        removed += await oauth_requests.delete_expired_requests(session, now)
    return removed


async def run_housekeeping(
    db: Database, policy: SessionPolicy, clock: Callable[[], float], *, interval: float
) -> None:
    while True:
        try:
            await purge_once(db, policy, clock())
        except Exception as exc:  # a database hiccup must not end the loop
            log.error("identity housekeeping failed", extra={"code": type(exc).__name__})
        await anyio.sleep(interval)
