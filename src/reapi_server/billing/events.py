"""Stripe events: which are handled, and how one is applied exactly once.

Applying an event (`apply_event`):

1. fetch from Stripe what it is about, again (never trusting the event's body: it was signed,
   but it is a snapshot, maybe older than another event already applied); a payment of a
   deleted account's top-up is refunded at this point (`after_deletion`);
2. in ONE transaction: claim the event (`event_store.claim`: `handled_at` set if nobody has),
   lock the account, bring our rows to what Stripe says, move the credit, queue the receipt.
   A failure, or a dependency not there yet (`Waiting`), rolls all of it back, claim included;
   the attempt is then noted on the event (`next_attempt_at`) for the retry loop.

Every other event type is stored and marked `ignored`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits import movements
from ..db import Database
from ..models import StripeEvent
from . import event_store
from .after_deletion import LatePayment, apply_late, late_checkout, late_intent, refund_first
from .applying import Applying, Waiting
from .disputes import apply_dispute
from .purchases import apply_checkout, apply_intent, charged_from, checkout_from
from .refunds import apply_charge_refunds
from .stripe_api import StripeApi, object_id

__all__ = ["HANDLED_TYPES", "Applied", "apply_event", "retry_delay"]

Apply = Callable[[AsyncSession, Applying], Awaitable[str]]
Fetch = Callable[[StripeApi, Database, str], Awaitable[Apply]]


async def _or_late(db: Database, api: StripeApi, ours: Apply, late: LatePayment) -> Apply:
    """`ours`, or, for a top-up that went with its deleted account, `after_deletion`'s: its
    refund made first (outside the transaction), then recorded."""
    charge = await refund_first(db, api, late)

    async def apply(session: AsyncSession, ctx: Applying) -> str:
        outcome = await ours(session, ctx)
        if outcome != "not_ours":
            return outcome
        return await apply_late(session, late, charge, ctx)

    return apply


async def _checkout(api: StripeApi, db: Database, session_id: str) -> Apply:
    found = await api.checkout_session(session_id)
    invoice_id = object_id(found.get("invoice"))
    invoice = await api.invoice(invoice_id) if invoice_id else None
    checkout = checkout_from(found, invoice)
    ours: Apply = lambda session, ctx: apply_checkout(session, checkout, ctx)  # noqa: E731
    return await _or_late(db, api, ours, late_checkout(checkout))


async def _refunds(api: StripeApi, db: Database, charge_id: str) -> Apply:
    charge = await api.charge(charge_id)
    return lambda session, ctx: apply_charge_refunds(session, charge, ctx)


async def _dispute(api: StripeApi, db: Database, dispute_id: str) -> Apply:
    dispute = await api.dispute(dispute_id)
    return lambda session, ctx: apply_dispute(session, dispute, ctx)


async def _intent(api: StripeApi, db: Database, intent_id: str) -> Apply:
    intent = charged_from(await api.payment_intent(intent_id))
    ours: Apply = lambda session, ctx: apply_intent(session, intent, ctx)  # noqa: E731
    return await _or_late(db, api, ours, late_intent(intent))


#: Event type → how to fetch what it is about. The webhook endpoint must send these.
_HANDLERS: dict[str, Fetch] = {
    "checkout.session.completed": _checkout,
    "checkout.session.async_payment_succeeded": _checkout,
    "checkout.session.async_payment_failed": _checkout,
    "checkout.session.expired": _checkout,
    "charge.refunded": _refunds,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute,
    "payment_intent.succeeded": _intent,
    "payment_intent.payment_failed": _intent,
}
HANDLED_TYPES = tuple(_HANDLERS)


@dataclass(frozen=True, slots=True)
class Applied:
    """`applied` (this call applied it: `outcome` says what it did), `done` (handled before),
    `ignored` (a type not handled), `waiting` (what it depends on is not there yet)."""

    state: str
    outcome: str | None = None


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt: 10 s doubling to an hour."""
    return float(min(10 * 2 ** max(attempts - 1, 0), 3600))


async def apply_event(
    db: Database,
    api: StripeApi,
    event_id: str,
    *,
    make_context: Callable[[], Applying],
    give_up_after: float | None = None,
) -> Applied:
    """Apply a stored event (see the module). Raises what fetching or applying raised (the
    attempt noted on the event first), except `Waiting`, which is a result. An attempt that
    fails when the next would come more than `give_up_after` seconds after the event arrived
    gives it up: the retry loop leaves it (see `event_store.failed_attempt`)."""
    async with db.read() as session:
        row = await event_store.get(session, event_id)
    if row is None:
        raise LookupError(event_id)
    if row.handled_at is not None:
        return Applied("done", row.outcome)
    fetch = _HANDLERS.get(row.type)
    if fetch is None or row.object_id is None:
        async with db.write() as session:
            ignored = await event_store.claim(session, event_id, make_context().now, "ignored")
        return Applied("ignored" if ignored else "done")
    failure: Exception | None = None
    try:
        apply = await fetch(api, db, row.object_id)
        ctx = make_context()
        async with db.write() as session:
            if not await event_store.claim(session, event_id, ctx.now, "applying"):
                return Applied("done")
            outcome = await apply(session, ctx)
            await event_store.record(session, event_id, outcome=outcome)
    except Exception as error:  # noted on the event (after this block), then raised again
        failure = error
    if failure is None:
        return Applied("applied", outcome)
    waiting = failure if isinstance(failure, Waiting) else None
    why = "waiting" if waiting is not None else type(failure).__name__
    await _note_attempt(db, row, why, make_context().now, waiting, give_up_after)
    if waiting is not None:
        return Applied("waiting")
    raise failure


async def _note_attempt(
    db: Database,
    row: StripeEvent,
    why: str,
    now: float,
    waiting: Waiting | None,
    give_up_after: float | None,
) -> None:
    """Note a failed attempt: when to try again (the backoff, sooner if the wait says so), or
    never when that would fall past `give_up_after` from the event's arrival. A wait on an
    account's credit holds is never given up: it always ends (the holds close or expire, and
    no new one starts meanwhile), and the account refuses new requests until it does."""
    delay = retry_delay(row.attempts + 1)
    if waiting is not None and waiting.retry_after is not None:
        delay = min(delay, waiting.retry_after)
    due = now + delay
    on_holds = waiting is not None and waiting.hold_account is not None
    give_up = give_up_after is not None and not on_holds and due > row.received_at + give_up_after
    async with db.write() as session:
        # The event's row before its account, as applying it takes them (`lock_order`).
        await event_store.failed_attempt(
            session,
            row.id,
            error=why,
            waiting_for=waiting.on if waiting is not None else None,
            next_attempt_at=None if give_up else due,
            now=now,
        )
        if waiting is not None and waiting.hold_account is not None:
            await movements.hold_for_refund(session, waiting.hold_account)
