"""All SQL about stored Stripe events.

An event is stored once, by Stripe's id (insert-or-ignore: a redelivery, or a copy arriving at
the same moment, finds the row). It is applied in a transaction that starts by claiming it
(`claim`: a conditional UPDATE of `handled_at`), so of two deliveries applying it at once one
claims and the other finds it handled — on PostgreSQL it waits on the row, then finds it so. A
transaction that fails rolls the claim back with everything else.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import StripeEvent

# Seconds the delivery that stored an event has to apply it before the retry loop may (`store`);
# the first backoff's length.
FIRST_ATTEMPT_LEASE = 10.0

__all__ = [
    "claim",
    "delete_handled_before",
    "due",
    "failed_attempt",
    "get",
    "latest",
    "record",
    "store",
    "unhandled_count",
    "wake_waiting",
]


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def store(
    session: AsyncSession,
    *,
    event_id: str,
    type_: str,
    object_id: str | None,
    created: float,
    now: float,
) -> bool:
    """Store the event unless it is stored already: True when this call stored it. Its first
    attempt is the delivery's own, right after; the retry loop takes the event only if that
    attempt never notes how it ended (the process stopped mid-attempt), `FIRST_ATTEMPT_LEASE`
    later. Due at once, the loop would apply it alongside the delivery: two Stripe fetches,
    two attempts counted, and a backoff worked out from a count the other had not written."""
    if await session.get(StripeEvent, event_id) is not None:
        return False
    row = StripeEvent(
        id=event_id,
        type=type_,
        object_id=object_id,
        stripe_created=created,
        received_at=now,
        attempts=0,
        next_attempt_at=now + FIRST_ATTEMPT_LEASE,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # stored by a copy delivered at the same moment
        return False
    return True


async def get(session: AsyncSession, event_id: str) -> StripeEvent | None:
    return await session.get(StripeEvent, event_id, populate_existing=True)


async def claim(session: AsyncSession, event_id: str, now: float, outcome: str) -> bool:
    """Mark the event handled with `outcome`, if nobody has: the first statement of the
    transaction that applies it. False: it was handled already."""
    result = await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.handled_at.is_(None))
        .values(handled_at=now, outcome=outcome, last_error=None, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return _changed(result) == 1


async def record(
    session: AsyncSession, event_id: str, *, outcome: str | None = None, error: str | None = None
) -> None:
    """After the claim, in the same transaction: what applying it came to."""
    values: dict[str, object] = {}
    if outcome is not None:
        values["outcome"] = outcome
    values["last_error"] = error
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def failed_attempt(
    session: AsyncSession,
    event_id: str,
    *,
    error: str,
    next_attempt_at: float | None,
    waiting_for: str | None = None,
    now: float,
) -> None:
    """An attempt that did not apply it (rolled back): why not, what it waits for, and when to
    try again — None: never by itself (given up, from `now`; an operator may still apply it,
    and `wake_waiting` does when what it waits for comes)."""
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.handled_at.is_(None))
        .values(
            attempts=StripeEvent.attempts + 1,
            last_error=error[:64],
            waiting_for=waiting_for[:255] if waiting_for else None,
            next_attempt_at=next_attempt_at,
            given_up_at=now if next_attempt_at is None else None,
        )
        .execution_options(synchronize_session=False)
    )


async def wake_waiting(session: AsyncSession, waiting_for: Sequence[str], now: float) -> int:
    """The events waiting for one of `waiting_for` (a PaymentIntent, charge or top-up just
    credited) are due now, given up or not; no other. How many."""
    if not waiting_for:
        return 0
    result = await session.execute(
        update(StripeEvent)
        .where(
            StripeEvent.handled_at.is_(None),
            StripeEvent.last_error == "waiting",
            StripeEvent.waiting_for.in_(list(waiting_for)),
        )
        .values(next_attempt_at=now, given_up_at=None)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def due(session: AsyncSession, now: float, limit: int = 50) -> list[StripeEvent]:
    """Unhandled events whose next attempt is due, in the order Stripe made them."""
    result = await session.execute(
        select(StripeEvent)
        .where(StripeEvent.handled_at.is_(None), StripeEvent.next_attempt_at <= now)
        .order_by(StripeEvent.stripe_created, StripeEvent.id)
        .limit(limit)
    )
    return list(result.scalars())


async def latest(
    session: AsyncSession, *, limit: int = 100, unhandled_only: bool = False, ignored: bool = True
) -> list[StripeEvent]:
    """The latest events first: all, or only those not applied yet; with `ignored` False,
    not those of types billing does not act on."""
    query = select(StripeEvent).order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
    if unhandled_only:
        query = query.where(StripeEvent.handled_at.is_(None))
    if not ignored:
        query = query.where(or_(StripeEvent.outcome.is_(None), StripeEvent.outcome != "ignored"))
    return list((await session.execute(query.limit(limit))).scalars())


async def unhandled_count(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count()).select_from(StripeEvent).where(StripeEvent.handled_at.is_(None))
    )
    return int(result.scalar_one())


async def delete_handled_before(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Handled events received before `cutoff` (their effects are in the rows they changed)."""
    batch = (
        select(StripeEvent.id)
        .where(StripeEvent.handled_at.is_not(None), StripeEvent.received_at < cutoff)
        .limit(limit)
    )
    connection = await session.connection()
    result = await connection.execute(
        delete(StripeEvent).where(StripeEvent.id.in_(batch.scalar_subquery()))
    )
    return _changed(result)
