"""Releases of credit holds that met an unavailable database, tried again until one lands.

A request whose settlement or release fails because the database is away (a restart, a
failover, a partition) answers `503 database_unavailable`; its hold, already committed, stays
held. Left to the sweeper it would keep the caller's credits reserved for `image_hold_seconds`
(15 minutes) after the database came back, or, for a video whose submission failed (its job
failed with the hold: `jobs.submission`), until the job's lease expires (`job_lease_seconds`).
So the process keeps the release (`PendingReleases`, memory only) and a background task tries
it again every second: the credits come back within a second or so of the database. Releasing
is idempotent (a hold closed meanwhile, by the sweeper or another try, is left as it is). A
process that dies first loses the list, and the sweeper releases those holds at their expiry, as
before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import anyio

from ..db_errors import is_unavailable
from .live import LiveHolds

__all__ = [
    "PendingReleases",
    "release_before_exit",
    "retry_pending_releases",
    "run_pending_releases",
]

log = logging.getLogger("reapi_server.credits")

#: Gives a hold back (and closes its request's rows); raises while the database is away.
Release = Callable[[], Awaitable[None]]

#: How often the releases are tried again.
RETRY_SECONDS = 1.0
#: The most kept in memory: a database failing for long under load (timeouts) must not grow
#: the list without end; past it, holds wait for the sweeper as before.
MAX_PENDING = 10_000


class PendingReleases:
    def __init__(self) -> None:
        self._releases: dict[str, Release] = {}

    def __len__(self) -> int:
        return len(self._releases)

    def add(self, hold_id: str, release: Release) -> None:
        """`hold_id`: what the release is known by (a video's: its job id)."""
        if len(self._releases) >= MAX_PENDING:  # the sweeper releases it at its expiry
            log.error("pending releases full", extra={"code": str(MAX_PENDING)})
            return
        self._releases[hold_id] = release

    async def release_or_keep(
        self,
        hold_id: str,
        release: Release,
        *,
        logger: logging.Logger,
        about: dict[str, str],
        reraise: bool,
    ) -> None:
        """Run `release` now; failing, log it on the caller's `logger` ("release failed", with
        `about`: the request's or the job's id) and keep it, tried again each second. Its error
        is raised again with `reraise` (the request answers it), else swallowed."""
        try:
            await release()
        except Exception as exc:
            logger.error("release failed", extra={**about, "code": type(exc).__name__})
            self.add(hold_id, release)
            if reraise:
                raise

    def items(self) -> list[tuple[str, Release]]:
        return list(self._releases.items())

    def done(self, hold_id: str) -> None:
        self._releases.pop(hold_id, None)


async def retry_pending_releases(pending: PendingReleases) -> int:
    """One round, oldest first, stopping at the first failure of an unavailable database (it
    is still away); how many were released. A release failing otherwise (a bug, a constraint)
    would fail again each second and hold up those behind it: it is dropped, left to the
    sweeper."""
    released = 0
    for hold_id, release in pending.items():
        try:
            await release()
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.error("pending release dropped", extra={"code": type(exc).__name__})
            pending.done(hold_id)
            continue
        pending.done(hold_id)
        released += 1
    return released


async def run_pending_releases(pending: PendingReleases) -> None:
    while True:
        if pending:
            try:
                await retry_pending_releases(pending)
            except Exception as exc:  # still unavailable: the next round tries again
                log.warning("pending releases wait", extra={"code": type(exc).__name__})
        await anyio.sleep(RETRY_SECONDS)


async def release_before_exit(
    live: LiveHolds,
    pending: PendingReleases,
    seconds: float,
    *,
    also: Sequence[Callable[[], Awaitable[None]]] = (),
) -> None:
    """At shutdown, once the server has cut the requests the drain did not finish: their
    shielded releases still run, and need the database this process is about to close. Wait
    for them (up to `seconds`: `live` empties as each request ends), then try once more those
    that failed; what is left, the sweeper releases at its expiry. `also`: the other ends the
    cut requests still write after their holds (their idempotency records dropped)."""
    with anyio.move_on_after(seconds):  # the retry too: a database that hangs cannot hold us
        await live.until_empty()
        for ended in also:
            await ended()
        if pending:
            try:
                await retry_pending_releases(pending)
            except Exception as exc:
                log.warning("releases left to the sweeper", extra={"code": type(exc).__name__})
