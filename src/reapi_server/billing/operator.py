"""What an operator does with payments: list them, refund one (all of it or part).

A refund goes through Stripe (never only in our database): the money goes back first, then the
credits it bought are taken back exactly as for a refund made in Stripe's dashboard
(`refunds.apply_charge_refunds`) — applied here at once, and again harmlessly when the
`charge.refunded` webhook arrives (or only then, while the account's credits are held by
running requests: `RefundDone.waiting`). Credit already spent is waived unless the operator asks for
it back (`take_back_spent`: it becomes debt the account pays from its next purchase).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from ..accounts import repository as accounts
from ..audit import Actor, record
from ..config import Settings
from ..credits import movements
from ..db import Database
from ..errors import GatewayError, NotFound
from . import event_store, repository
from .applying import Waiting
from .events import Applied
from .refunds import apply_charge_refunds
from .service import Billing
from .settings import ZERO_DECIMAL_CURRENCIES, format_money

__all__ = [
    "EventView",
    "PaymentView",
    "RefundDone",
    "list_payments",
    "parse_money",
    "payment_currency",
    "reapply_event",
    "refund_payment",
    "stored_events",
    "with_billing",
]

T = TypeVar("T")


async def with_billing(settings: Settings, work: Callable[[Billing], Awaitable[T]]) -> T:
    """For the CLI: the server's billing on its database, for one piece of work."""
    from ..migrate import upgrade

    settings.ensure_database_dir()
    db = Database(settings.resolved_database_url)
    billing = Billing.from_settings(settings, db, time.time)
    try:
        await upgrade(db)
        return await work(billing)
    finally:
        await billing.aclose()
        await db.dispose()


class RefundRefused(GatewayError):
    default_code = "refund_refused"


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: str
    account_id: str | None
    email: str | None
    created_at: float
    product: str
    credits: int
    amount: int
    currency: str
    status: str
    amount_refunded: int
    source: str

    @property
    def price(self) -> str:
        return format_money(self.amount, self.currency)

    @property
    def refunded(self) -> str:
        return format_money(self.amount_refunded, self.currency)

    @property
    def left(self) -> str:
        """What can still be refunded."""
        return format_money(self.amount - self.amount_refunded, self.currency)


@dataclass(frozen=True, slots=True)
class RefundDone:
    refund_id: str
    amount: int
    currency: str
    #: Credits taken from the balance, added to the debt, waived (spent already).
    taken: int
    debt: int
    waived: int
    #: The credits wait for holds of running requests to close (the webhook applies them).
    waiting: bool = False


#: An amount has fewer whole digits than this: far above any payment (Stripe takes 8 digits of
#: minor units) and any monthly cap. Checked before anything is computed: a typed `1e999999`
#: would cost tens of seconds of CPU to turn into an integer (quadratic in its exponent), and
#: overflow the database column after.
_MAX_WHOLE_DIGITS = 12


def parse_money(text: str, currency: str) -> int:
    """`"5"`, `"5.5"` or `"5.50"` in the currency's own unit → minor units (cents)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    exponent = 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2
    unit = "whole units" if exponent == 0 else "at most 2 decimals"
    refused = RefundRefused(
        f"the amount is a positive number in {currency.upper()} ({unit})", param="amount"
    )
    # is_finite first: comparing a signalling NaN (`sNaN`) raises.
    if not value.is_finite() or value <= 0 or value.adjusted() >= _MAX_WHOLE_DIGITS:
        raise refused
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise refused
    return int(minor)


async def payment_currency(billing: Billing, payment_id: str) -> str | None:
    async with billing.db.read() as session:
        payment = await repository.get_payment(session, payment_id)
    return payment.currency if payment is not None else None


async def list_payments(
    billing: Billing, *, limit: int = 50, account_id: str | None = None
) -> list[PaymentView]:
    async with billing.db.read() as session:
        found = await repository.list_payments(session, limit=limit, account_id=account_id)
        views = []
        for payment in found:
            email = (
                await accounts.owner_email(session, payment.account_id)
                if payment.account_id
                else None
            )
            views.append(
                PaymentView(
                    id=payment.id,
                    account_id=payment.account_id,
                    email=email,
                    created_at=payment.created_at,
                    product=payment.product,
                    credits=payment.credits,
                    amount=payment.amount,
                    currency=payment.currency,
                    status=payment.status,
                    amount_refunded=payment.amount_refunded,
                    source=payment.source,
                )
            )
    return views


async def refund_payment(
    billing: Billing,
    payment_id: str,
    *,
    amount: int | None = None,
    take_back_spent: bool = False,
    actor: Actor | None = None,
) -> RefundDone:
    """Refund `amount` (minor units; None: what is left) of a paid payment through Stripe,
    then take back its credits; with `actor`, the audit log says who, in the same
    transaction."""
    async with billing.db.read() as session:
        payment = await repository.get_payment(session, payment_id)
    if payment is None:
        raise NotFound("no such payment", param="payment")
    # A payment under review (not credited: not what its pack asked) is refunded like any.
    refundable = payment.status in ("paid", "review")
    if not refundable or payment.stripe_payment_intent_id is None:
        raise RefundRefused("only a paid payment can be refunded", param="payment")
    left = payment.amount - payment.amount_refunded
    wanted = left if amount is None else amount
    if left <= 0:
        raise RefundRefused("this payment is refunded in full already", param="payment")
    if not 0 < wanted <= left:
        raise RefundRefused(
            f"at most {format_money(left, payment.currency)} of this payment can be refunded",
            param="amount",
        )
    api = billing.stripe()
    refund = await api.create_refund(
        payment_intent=payment.stripe_payment_intent_id,
        amount=wanted,
        metadata={
            "payment_id": payment.id,
            "requested_by": "operator",
            "take_back": "all" if take_back_spent else "unspent",
        },
        # The same request from the same state is one refund, however often it is retried.
        idempotency_key=f"refund:{payment.id}:{payment.amount_refunded}:{wanted}",
    )
    refund_id = str(refund["id"])
    charge_id = refund.get("charge")
    charge = await api.charge(charge_id) if isinstance(charge_id, str) else None
    waiting: Waiting | None = None
    if charge is not None:
        try:
            async with billing.db.write() as session:
                await apply_charge_refunds(session, charge, billing.context())
        except Waiting as error:  # credits held by running requests: applied once they close
            waiting = error
    if waiting is not None and waiting.hold_account is not None:
        async with billing.db.write() as session:  # no new holds meanwhile (`refunds`)
            await movements.hold_for_refund(session, waiting.hold_account)
    async with billing.db.write() as session:
        if actor is not None:
            await record(
                session,
                actor,
                "payment.refund",
                now=billing.clock(),
                account_id=payment.account_id,
                detail={
                    "payment": payment.id,
                    "refund": refund_id,
                    "amount": format_money(wanted, payment.currency),
                    "take_back_spent": take_back_spent,
                },
            )
    async with billing.db.read() as session:
        rows = {row.id: row for row in await repository.refunds_of(session, payment.id)}
    row = rows.get(refund_id)
    return RefundDone(
        refund_id=refund_id,
        amount=wanted,
        currency=payment.currency,
        taken=row.credits_taken if row else 0,
        debt=row.credits_debt if row else 0,
        waived=row.credits_waived if row else 0,
        waiting=waiting is not None,
    )


@dataclass(frozen=True, slots=True)
class EventView:
    id: str
    type: str
    object_id: str | None
    received_at: float
    handled_at: float | None
    outcome: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    #: The retry loop stopped trying it (unapplied too long): only "Apply now", or what it
    #: waits for arriving, applies it.
    given_up_at: float | None = None
    #: The PaymentIntent, charge or top-up it waits for.
    waiting_for: str | None = None


async def stored_events(
    billing: Billing, *, limit: int = 100, unhandled_only: bool = False, ignored: bool = True
) -> tuple[list[EventView], int]:
    """The latest stored Stripe events (newest first), and how many are unhandled in all."""
    async with billing.db.read() as session:
        rows = await event_store.latest(
            session, limit=limit, unhandled_only=unhandled_only, ignored=ignored
        )
        unhandled = await event_store.unhandled_count(session)
    views = [
        EventView(
            id=row.id,
            type=row.type,
            object_id=row.object_id,
            received_at=row.received_at,
            handled_at=row.handled_at,
            outcome=row.outcome,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            given_up_at=row.given_up_at,
            waiting_for=row.waiting_for,
        )
        for row in rows
    ]
    return views, unhandled


async def reapply_event(billing: Billing, event_id: str, actor: Actor) -> Applied:
    """An operator applies a stored event now (it is fetched from Stripe again, as always);
    the audit log says who and what came of it."""
    async with billing.db.read() as session:
        if await event_store.get(session, event_id) is None:
            raise NotFound("no such stored event", param="event")
    applied = await billing.apply(event_id)
    async with billing.db.write() as session:
        await record(
            session,
            actor,
            "stripe_event.apply",
            now=billing.clock(),
            detail={"event": event_id, "state": applied.state, "outcome": applied.outcome},
        )
    return applied
