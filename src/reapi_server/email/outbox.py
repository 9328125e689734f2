"""The outbox: mail written in the caller's transaction, delivered by a background loop.

`enqueue` adds a row inside whatever transaction causes the mail (sign-up, reset, ...): if
that transaction rolls back, no mail; if it commits, the mail is not lost whatever happens to
the process or the backend. Every server process runs the loop (`run_outbox`); a process claims
a due row by moving its `not_before` past a lease (a compare-and-set), so two never send the
same row at once, and a row whose process died is claimed again once the lease runs out.
A failure is retried with exponential backoff (longer when the backend says Retry-After); after
`max_attempts` the row is marked failed. A backend that throttles (`SendThrottled`: a rate limit)
puts the rest of the pass back for its Retry-After without counting an attempt.
Once sent or given up, the row keeps only metadata: its subject and bodies are dropped (a
message in `FORGET_ONCE_SENT` loses its row entirely). A row names the user it was sent to, so
that their export and deletion find it after they changed address (`list_for_person`,
`drop_for_person`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..background_rounds import RoundLog
from ..db import Database
from ..ids import new_id
from ..models import OutboxMessage, User
from .message import Message
from .sender import Sender, SendFailed, SendThrottled

__all__ = [
    "FORGET_ONCE_SENT",
    "OutboxPolicy",
    "deliver_due",
    "drop_for_person",
    "drop_newsletters",
    "enqueue",
    "list_for_person",
    "purge_finished",
    "run_outbox",
]

log = logging.getLogger("reapi_server.email")

#: Messages whose row goes entirely once sent (or given up), address included: the account
#: deletion's confirmation, whose row is the last trace of the person's address.
FORGET_ONCE_SENT = frozenset({"account_deleted"})


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    #: How long a claimed row is left to its process before another may take it.
    lease_seconds: float = 120.0
    max_attempts: int = 12
    first_backoff: float = 30.0
    max_backoff: float = 3600.0
    batch: int = 50
    #: Sent and failed rows are deleted after this long.
    keep_seconds: float = 30 * 86_400.0

    def backoff(self, attempts: int) -> float:
        return float(min(self.first_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))


async def enqueue(
    session: AsyncSession, message: Message, now: float, *, user_id: str | None = None
) -> str:
    """Queue `message` in the caller's transaction; its id (the backend's idempotency key).
    `user_id`: the person it is for, when the address is not theirs (one they asked to move
    to, or the one they just left); by default, the user whose address it is now, if any."""
    if user_id is None:
        found = await session.execute(select(User.id).where(User.email == message.to))
        user_id = found.scalar_one_or_none()
    row = OutboxMessage(
        id=new_id("mail"),
        kind=message.kind,
        template=message.template,
        to_address=message.to,
        user_id=user_id,
        subject=message.subject,
        text_body=message.text,
        html_body=message.html,
        headers=json.dumps(dict(message.headers)) if message.headers else None,
        status="pending",
        attempts=0,
        not_before=now,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row.id


def _message(row: OutboxMessage) -> Message:
    return Message(
        to=row.to_address,
        subject=row.subject or "",
        text=row.text_body or "",
        html=row.html_body,
        template=row.template,
        kind="newsletter" if row.kind == "newsletter" else "transactional",
        headers=json.loads(row.headers) if row.headers else {},
    )


async def _claim(session: AsyncSession, now: float, policy: OutboxPolicy) -> list[OutboxMessage]:
    due = await session.execute(
        select(OutboxMessage.id, OutboxMessage.not_before)
        .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.not_before)
        .limit(policy.batch)
    )
    claimed = []
    for message_id, not_before in due.all():
        result = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.not_before == not_before)
            .values(not_before=now + policy.lease_seconds, attempts=OutboxMessage.attempts + 1)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(message_id)
    if not claimed:
        return []
    rows = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(claimed))
        .order_by(OutboxMessage.created_at)
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


async def deliver_due(
    db: Database, sender: Sender, clock: Callable[[], float], policy: OutboxPolicy
) -> int:
    """One pass: claim due rows, send them, record each outcome. How many were sent."""
    async with db.write() as session:
        claimed = await _claim(session, clock(), policy)
    sent = 0
    for index, row in enumerate(claimed):
        try:
            await sender.send(_message(row), message_id=row.id)
        except SendThrottled as throttled:
            # The backend wants fewer requests: this row and the rest of the pass wait.
            await _put_back(db, claimed[index:], throttled, clock())
            break
        except Exception as error:
            failure = error if isinstance(error, SendFailed) else SendFailed(type(error).__name__)
            await _record_failure(db, row, failure, clock(), policy)
            continue
        async with db.write() as session:
            if row.template in FORGET_ONCE_SENT:
                await session.execute(delete(OutboxMessage).where(OutboxMessage.id == row.id))
            else:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(
                        status="sent",
                        sent_at=clock(),
                        subject=None,
                        text_body=None,
                        html_body=None,
                        headers=None,
                        last_error=None,
                    )
                )
        sent += 1
    if claimed:  # the texts sent (or given up on) are gone: the WAL's copies of them too
        db.personal_data_deleted()
    return sent


async def _record_failure(
    db: Database, row: OutboxMessage, failure: SendFailed, now: float, policy: OutboxPolicy
) -> None:
    final = not failure.retryable or row.attempts >= policy.max_attempts
    wait = max(policy.backoff(row.attempts), failure.retry_after or 0.0)
    log.warning(
        "mail not sent" + (", giving up" if final else ", will retry"),
        extra={"code": f"{row.template}:{failure.code}", "attempts": row.attempts},
    )
    async with db.write() as session:
        if final and row.template in FORGET_ONCE_SENT:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.id == row.id))
            return
        # Given up, it will never be sent: its text (one-time links, the person's details)
        # goes now, as a sent message's does.
        forgotten = dict.fromkeys(("subject", "text_body", "html_body", "headers")) if final else {}
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(
                status="failed" if final else "pending",
                not_before=now + wait,
                last_error=failure.code,
                **forgotten,
            )
        )


async def _put_back(
    db: Database, rows: list[OutboxMessage], throttled: SendThrottled, now: float
) -> None:
    """Release claimed rows untried for `retry_after`, their claim's attempt undone."""
    log.warning("mail backend throttled, waiting", extra={"code": throttled.code})
    async with db.write() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([row.id for row in rows]))
            .values(
                not_before=now + (throttled.retry_after or 1.0),
                attempts=OutboxMessage.attempts - 1,
                last_error=throttled.code,
            )
        )


async def purge_finished(session: AsyncSession, cutoff: float) -> int:
    """Delete sent and failed rows created before `cutoff`."""
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(("sent", "failed")), OutboxMessage.created_at < cutoff
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _about(user_id: str, address: str) -> ColumnElement[bool]:
    """The user's rows, and the rows to `address` that name nobody (queued before 0021 and
    for no one then): a row to their address that names someone else is that person's (who
    had the address before them)."""
    return or_(
        OutboxMessage.user_id == user_id,
        and_(OutboxMessage.user_id.is_(None), OutboxMessage.to_address == address),
    )


async def list_for_person(session: AsyncSession, user_id: str, address: str) -> list[OutboxMessage]:
    """The messages to the user, at any address they had (`_about`)."""
    result = await session.execute(
        select(OutboxMessage)
        .where(_about(user_id, address))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return list(result.scalars())


async def drop_for_person(session: AsyncSession, user_id: str, address: str) -> int:
    """Forget every message to the user, sent or not, at whichever address (an old one, one
    they asked to move to): they are being deleted (`_about`)."""
    result = await session.execute(delete(OutboxMessage).where(_about(user_id, address)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def drop_newsletters(session: AsyncSession, address: str) -> int:
    """Forget the newsletters not yet sent to `address` (its owner unsubscribed). A message
    being sent right now may still go; none is tried after this commits."""
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.to_address == address,
            OutboxMessage.kind == "newsletter",
            OutboxMessage.status == "pending",
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def run_outbox(
    db: Database,
    sender: Sender,
    clock: Callable[[], float],
    *,
    interval: float,
    policy: OutboxPolicy | None = None,
) -> None:
    """The background loop of every server process."""
    policy = policy or OutboxPolicy()
    passes = 0
    rounds = RoundLog(log, "outbox pass")
    while True:
        try:
            await deliver_due(db, sender, clock, policy)
            passes += 1
            if passes % 600 == 1:  # now and then: old rows go
                async with db.write() as session:
                    await purge_finished(session, clock() - policy.keep_seconds)
                # A backend that keeps the messages itself (the file backend) drops its copies
                # on the same schedule.
                forget_before = getattr(sender, "forget_before", None)
                if forget_before is not None:
                    await forget_before(clock() - policy.keep_seconds)
        except Exception as exc:  # a database hiccup must not end the loop
            rounds.failed(exc)
        else:
            rounds.succeeded()
        await anyio.sleep(interval)
