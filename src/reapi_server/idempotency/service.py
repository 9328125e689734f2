"""Claim a key before doing the work; replay the stored answer after.

- same key, same request, already answered → the stored answer (no upstream call, no charge);
- same key, same request, still running → wait for its answer: on an in-process event when
  this process runs it, else by reading the record with backoff (no write transaction);
- same key, other request → 409;
- a request that failed leaves no record, so a retry with the same key runs again.

The answer is recorded by the transaction that makes the request's charge final (an image's
settlement, a video's submitted job), through `Claim.record`: a process that dies after its
charge has recorded its answer too, so a retry with the key is replayed, never charged again.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..accounts import repository as accounts
from ..errors import AccountClosed, GatewayError, IdempotencyConflict
from ..group_commit import Tx
from ..runtime import Runtime
from . import repository
from .fingerprint import hash_idempotency_key

__all__ = ["CHARGED_KEY", "Claim", "RecordAnswer", "Replay", "abandon", "begin", "finish"]

#: Where an answer's snapshot keeps the credits its request was charged, for a replay to send
#: again (snapshots written before it was kept have none: their replays send no charge).
CHARGED_KEY = "credits_charged"

_MAX_KEY_LENGTH = 255
#: A waiter whose key another process claimed reads the record after 50 ms, then ever less
#: often (doubling, with jitter, up to once a second): a cheap read, never a write.
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0
#: A waiter whose key this process claimed is woken by an event; it reads again after this
#: long regardless (the record could have been dropped by a sweeper elsewhere).
_LOCAL_RECHECK = 5.0
#: Recording an answer: tries, and the pause after the first failure (doubled each time).
_COMPLETE_ATTEMPTS = 6
_COMPLETE_FIRST_PAUSE = 0.05

log = logging.getLogger("reapi_server.idempotency")


#: Writes a request's answer (status, snapshot) in the caller's transaction.
RecordAnswer = Callable[[Tx, int, dict[str, Any]], Awaitable[None]]


def _dumps(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, separators=(",", ":"))


class Claim:
    """A key this request holds. Its answer goes in with its charge (`record`, an op of the
    charging transaction), else `finish` writes it on its own."""

    __slots__ = ("record_id", "recorded")

    def __init__(self, record_id: int) -> None:
        self.record_id = record_id
        #: `record` ran in a transaction that committed, once the request has returned.
        self.recorded = False

    async def record(self, tx: Tx, status_code: int, snapshot: dict[str, Any]) -> None:
        await repository.complete(tx, self.record_id, status_code, _dumps(snapshot))
        self.recorded = True


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    snapshot: dict[str, Any]


async def begin(
    rt: Runtime, account_id: str, key: str, fingerprint: str, *, wait_seconds: float
) -> Claim | Replay:
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise GatewayError(  # a malformed key is a bad request (400), not a conflict
            f"Idempotency-Key must be 1 to {_MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
        )
    key_hash = hash_idempotency_key(rt.fingerprint_secret, key)
    deadline = anyio.current_time() + wait_seconds
    pause = _FIRST_PAUSE
    while True:
        now = rt.now()
        async with rt.db.read() as session:
            found = await repository.find(session, account_id, key_hash)
        if found is None or found.expires_at < now:
            claim = await _claim(rt, account_id, key_hash, fingerprint, now)
            if claim is not None:
                return claim
            continue  # another request claimed it first: look again
        if found.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request"
            )
        if found.state == "done" and found.status_code is not None and found.response is not None:
            return Replay(found.status_code, json.loads(found.response))
        left = deadline - anyio.current_time()
        if left <= 0:
            raise IdempotencyConflict(
                "a request with this Idempotency-Key is still in progress; retry later",
                code="idempotency_key_in_progress",
            )
        ended = rt.idempotency_claims.event(found.id)
        if ended is not None:  # claimed in this process: woken when its answer is recorded
            with anyio.move_on_after(min(left, _LOCAL_RECHECK)):
                await ended.wait()
        else:  # claimed by another process: read again, less and less often, or as soon as
            # that process says the claim ended (through Redis, when the fleet has it)
            jitter = random.uniform(0.5, 1.0)  # noqa: S311  (spreads reads; not a secret)
            await rt.wakeups.wait(_ended_topic(found.id), min(left, pause * jitter))
            pause = min(pause * 2, _MAX_PAUSE)


def _ended_topic(record_id: int) -> str:
    return f"idempotency-ended:{record_id}"


def _ended(rt: Runtime, record_id: int) -> None:
    """Wake the claim's waiters: this process's, and the other instances' (`Wakeups`)."""
    rt.idempotency_claims.ended(record_id)
    rt.wakeups.notify(_ended_topic(record_id))


async def _claim(
    rt: Runtime, account_id: str, key_hash: str, fingerprint: str, now: float
) -> Claim | None:
    """Claim the key (dropping an expired record of it); None when another request has it."""
    record_id = None
    try:
        async with rt.db.write() as session:
            if not await accounts.is_open(session, account_id):
                raise AccountClosed()  # being deleted: no record may point at it
            existing = await repository.find(session, account_id, key_hash)
            if existing is not None and existing.expires_at >= now:
                return None
            if existing is not None:
                await repository.drop(session, existing.id)
            alive_until = now + rt.settings.image_hold_seconds  # pushed back while it runs
            record_id = await repository.claim(
                session,
                account_id,
                key_hash,
                fingerprint,
                now,
                now + rt.settings.idempotency_ttl_seconds,
                alive_until,
            )
            # Before the commit: a waiter here that sees the record finds its event too.
            rt.idempotency_claims.claimed(record_id, alive_until)
    except BaseException as error:
        if record_id is not None:
            rt.idempotency_claims.ended(record_id)
        if isinstance(error, IntegrityError):
            return None  # another worker inserted it between our read and insert
        raise
    return Claim(record_id)


async def finish(rt: Runtime, claim: Claim, status_code: int, snapshot: dict[str, Any]) -> None:
    """The request has answered: record the answer unless it went in with the charge, and wake
    this process's waiters."""
    try:
        if not claim.recorded:
            await _record(rt, claim, status_code, snapshot)
    finally:
        _ended(rt, claim.record_id)


async def _record(rt: Runtime, claim: Claim, status_code: int, snapshot: dict[str, Any]) -> None:
    """On its own transaction, tried again on a database error: a record left in progress
    is dropped by the sweeper as abandoned. Never raises for that: the caller has done the
    work, so it gets its answer even if it cannot be recorded."""
    response = _dumps(snapshot)
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
    """The request failed: drop the record, so that a retry with the key runs again (unless
    its answer was recorded after all: then a retry gets it)."""
    try:
        with anyio.CancelScope(shield=True):
            async with rt.db.write() as session:
                await repository.drop_unanswered(session, claim.record_id)
    finally:
        _ended(rt, claim.record_id)
