"""Claim a key before doing the work; replay the stored answer after.

- same key, same request, already answered → the stored answer (no upstream call, no charge);
- same key, same request, still running (another worker) → wait for its answer;
- same key, other request → 409;
- a request that failed leaves no record, so a retry with the same key runs again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..accounts import repository as accounts
from ..errors import AccountClosed, IdempotencyConflict
from ..runtime import Runtime
from . import repository
from .fingerprint import hash_idempotency_key

__all__ = ["Claim", "Replay", "abandon", "begin", "complete"]

_MAX_KEY_LENGTH = 255
_WAIT_STEP = 0.05
#: Recording an answer: tries, and the pause after the first failure (doubled each time).
_COMPLETE_ATTEMPTS = 6
_COMPLETE_FIRST_PAUSE = 0.05

log = logging.getLogger("reapi_server.idempotency")


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    snapshot: dict[str, Any]


async def begin(
    rt: Runtime, account_id: str, key: str, fingerprint: str, *, wait_seconds: float
) -> Claim | Replay:
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise IdempotencyConflict(
            f"Idempotency-Key must be 1 to {_MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
        )
    key_hash = hash_idempotency_key(rt.fingerprint_secret, key)
    deadline = anyio.current_time() + wait_seconds
    while True:
        now = rt.now()
        try:
            async with rt.db.write() as session:
                if not await accounts.is_open(session, account_id):
                    raise AccountClosed()  # being deleted: no record may point at it
                existing = await repository.find(session, account_id, key_hash)
                if existing is not None and existing.expires_at < now:
                    await repository.drop(session, existing.id)
                    existing = None
                if existing is None:
                    record_id = await repository.claim(
                        session,
                        account_id,
                        key_hash,
                        fingerprint,
                        now,
                        now + rt.settings.idempotency_ttl_seconds,
                    )
                    return Claim(record_id)
                found_fingerprint, state = existing.fingerprint, existing.state
                status_code, response = existing.status_code, existing.response
        except IntegrityError:
            continue  # another worker claimed it between our read and insert: look again
        if found_fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request"
            )
        if state == "done" and status_code is not None and response is not None:
            return Replay(status_code, json.loads(response))
        if anyio.current_time() >= deadline:
            raise IdempotencyConflict(
                "a request with this Idempotency-Key is still in progress; retry later",
                code="idempotency_key_in_progress",
            )
        await anyio.sleep(_WAIT_STEP)


async def complete(rt: Runtime, claim: Claim, status_code: int, snapshot: dict[str, Any]) -> None:
    """Record the answer. Tried again on a database error: a record left in progress is
    dropped by the sweeper as abandoned, and a retry with the key would run (and be charged)
    again. Never raises for that: the caller has done (and paid for) the work, so it gets its
    answer even if it cannot be recorded."""
    response = json.dumps(snapshot, separators=(",", ":"))
    pause = _COMPLETE_FIRST_PAUSE
    with anyio.CancelScope(shield=True):
        for attempt in range(1, _COMPLETE_ATTEMPTS + 1):
            try:
                async with rt.db.write() as session:
                    await repository.complete(session, claim.record_id, status_code, response)
                return
            except SQLAlchemyError as error:
                if attempt == _COMPLETE_ATTEMPTS:
                    log.error(
                        "idempotency record not completed",
                        extra={"code": type(error).__name__},
                    )
                    return
            await anyio.sleep(pause)
            pause *= 2


async def abandon(rt: Runtime, claim: Claim) -> None:
    with anyio.CancelScope(shield=True):
        async with rt.db.write() as session:
            await repository.drop(session, claim.record_id)
