"""When each key was last used, written about once a minute and never on the request path.

A request that holds credit writes its time of use exactly, in the statement that holds it
(the key's row is written there anyway: `credits.repository`). Every other request (listing
models, reading usage, the management API) notes its key in memory (`KeyUsage.saw`: a
dictionary write); a background task writes what was noted once a minute, one UPDATE per minute
of use, rounded down to the minute and never moving a later time back: a busy key costs one
write a minute per process, not one per request.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import anyio

from ..db import Database
from . import repository

__all__ = ["FLUSH_SECONDS", "KeyUsage", "flush_last_used", "run_last_used"]

log = logging.getLogger("reapi_server.api_keys")

FLUSH_SECONDS = 60.0
_BATCH = 500


class KeyUsage:
    """Keys seen by this process since the last flush, and when."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def saw(self, key_id: str, now: float) -> None:
        self._seen[key_id] = now

    def drain(self) -> dict[str, float]:
        seen, self._seen = self._seen, {}
        return seen


async def flush_last_used(db: Database, usage: KeyUsage) -> int:
    """Write what `usage` noted; how many keys."""
    by_minute: dict[float, list[str]] = defaultdict(list)
    seen = usage.drain()
    for key_id, at in seen.items():
        by_minute[at - at % 60].append(key_id)
    for minute, key_ids in sorted(by_minute.items()):
        for start in range(0, len(key_ids), _BATCH):
            async with db.write() as session:
                await repository.touch(session, key_ids[start : start + _BATCH], minute)
    return len(seen)


async def run_last_used(db: Database, usage: KeyUsage) -> None:
    try:
        while True:
            await anyio.sleep(FLUSH_SECONDS)
            try:
                await flush_last_used(db, usage)
            except Exception as exc:  # the next round writes the keys seen again by then
                log.warning("last-used flush failed", extra={"code": type(exc).__name__})
    finally:
        with anyio.CancelScope(shield=True):  # on shutdown: what was seen since the last round
            try:
                await flush_last_used(db, usage)
            except Exception as exc:
                log.warning("last-used flush failed", extra={"code": type(exc).__name__})
