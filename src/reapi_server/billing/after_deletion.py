"""A payment that lands after its account was deleted: refunded, and kept on record.

Deleting an account expires its open Checkout Sessions (`checkout.expire_open_checkouts`), but
a payment may already be on its way: paid seconds before, its webhook not applied yet, or a
bank debit still processing that succeeds days later. Its top-up went with the account, so
the deletion keeps a tombstone of each top-up that could still be paid (`DeletedTopUp`: ids
only, `repository.forget_account`) for `TOMBSTONE_DAYS`. A payment event whose top-up is a
tombstone is handled here, in two steps:

1. `refund_first`, before the event's transaction (a Stripe call never holds the database):
   once Stripe says it succeeded, the payment is refunded in full, with one idempotency key
   per top-up. A refusal or an outage fails the attempt: the event is retried like any other
   (502 to Stripe, the retry loop) and Admin → Billing lists it as not applied meanwhile.
2. `apply_late`, in it: the payment is recorded without an account (as a deleted account's
   earlier payments are kept, 7 years), its refund with it, no credits; a WARNING log record,
   and the event's outcome `account_deleted` ("paid after the account was deleted: refunded").

A tombstone whose payment is still processing gives `pending` (it waits for the settlement);
an event naming no tombstone stays `not_ours` (another integration on the same Stripe account).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from ..models import DeletedTopUp
from . import repository
from .applying import Applying, Waiting
from .purchases import Charged, Checkout, Invoice, Money
from .refunds import apply_charge_refunds
from .stripe_api import StripeApi, StripeObject

__all__ = [
    "TOMBSTONE_DAYS",
    "LatePayment",
    "apply_late",
    "late_checkout",
    "late_intent",
    "refund_first",
]

log = logging.getLogger("reapi_server.billing")

#: How long a deleted account's payable top-ups are remembered: a bank debit settles within
#: about 14 days, and a Checkout Session is payable for at most 24 hours.
TOMBSTONE_DAYS = 30
#: How soon an event waiting for its refund is tried again (the tombstone appeared between
#: the refund's check and the event's transaction: the next attempt makes the refund).
_REFUND_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LatePayment:
    """What a payment event says of a top-up that may be a tombstone."""

    top_up_id: str | None
    #: checkout | auto
    source: str
    session_id: str | None
    intent: Charged | None
    #: Stripe's money: what it took, before tax when known, the currency.
    money: Money | None
    invoice: Invoice | None
    #: Stripe took the money (the Checkout Session is paid, the PaymentIntent succeeded).
    paid: bool


def late_checkout(checkout: Checkout) -> LatePayment:
    intent = checkout.intent
    charged = checkout.amount_total
    if charged is None and intent is not None:
        charged = intent.amount_received or intent.amount
    money = None
    if charged is not None and checkout.currency:
        money = Money(charged, checkout.amount_subtotal, checkout.currency)
    paid = checkout.payment_status == "paid" and intent is not None and intent.status == "succeeded"
    return LatePayment(
        top_up_id=checkout.top_up_id,
        source="checkout",
        session_id=checkout.session_id,
        intent=intent,
        money=money,
        invoice=checkout.invoice,
        paid=paid,
    )


def late_intent(intent: Charged) -> LatePayment:
    return LatePayment(
        top_up_id=intent.metadata.get("top_up_id"),
        # A Checkout's PaymentIntent carries the pack in its metadata as an automatic one does;
        # the tombstone's session id tells them apart (`apply_late`).
        source="auto",
        session_id=None,
        intent=intent,
        money=Money(intent.amount_received or intent.amount, None, intent.currency),
        invoice=None,
        paid=intent.status == "succeeded",
    )


def _matches(tombstone: DeletedTopUp, late: LatePayment) -> bool:
    """The event's Stripe objects are the tombstone's (as `purchases` checks a top-up's)."""
    if late.session_id is not None and tombstone.stripe_checkout_session_id not in (
        None,
        late.session_id,
    ):
        return False
    intent_id = late.intent.intent_id if late.intent is not None else None
    return intent_id is None or tombstone.stripe_payment_intent_id in (None, intent_id)


async def refund_first(db: Database, api: StripeApi, late: LatePayment) -> StripeObject | None:
    """Refund in full a paid payment of a tombstone not refunded yet: its charge, with every
    refund of it, for `apply_late`. None when there is nothing to refund (not a tombstone, not
    paid, or recorded and refunded already)."""
    intent = late.intent
    if not late.paid or late.top_up_id is None or intent is None or intent.charge_id is None:
        return None
    async with db.read() as session:  # one primary-key read for a top-up of a live account
        tombstone = await repository.deleted_top_up(session, late.top_up_id)
        if tombstone is None or not _matches(tombstone, late):
            return None
        recorded = await repository.find_payment(session, top_up_id=late.top_up_id)
    if recorded is not None and recorded.amount_refunded >= recorded.amount:
        return None
    charge = await api.charge(intent.charge_id)
    if int(charge.get("amount_refunded") or 0) < int(charge.get("amount") or 0):
        await api.create_refund(
            payment_intent=intent.intent_id,
            amount=None,  # what is left of it
            metadata={"top_up_id": late.top_up_id, "requested_by": "gateway"},
            # One refund per top-up, however often the event is retried.
            idempotency_key=f"refund:deleted:{late.top_up_id}",
        )
        charge = await api.charge(intent.charge_id)
    return charge


async def apply_late(
    session: AsyncSession, late: LatePayment, charge: StripeObject | None, ctx: Applying
) -> str:
    """The event's outcome for a top-up that is not ours any more (see the module)."""
    tombstone = None
    if late.top_up_id is not None:
        tombstone = await repository.deleted_top_up(session, late.top_up_id)
    if tombstone is None or not _matches(tombstone, late):
        return "not_ours"  # another integration on the same Stripe account
    intent = late.intent
    if intent is not None and intent.status == "processing":
        return "pending"  # a bank debit: its settlement's event comes later
    if not late.paid or intent is None or late.money is None:
        return "nothing"  # failed or expired: no money was taken
    payment = await repository.find_payment(session, top_up_id=tombstone.id)
    if payment is not None and payment.amount_refunded >= payment.amount:
        if late.invoice is not None and payment.invoice_id is None:  # its PaymentIntent's event
            payment.invoice_id, payment.invoice_number = late.invoice.id, late.invoice.number
        return "nothing"  # recorded and refunded by another event of it
    if charge is None:
        raise Waiting("paid after its account was deleted", retry_after=_REFUND_RETRY_SECONDS)
    if payment is None:
        source = "checkout" if tombstone.stripe_checkout_session_id else late.source
        payment = await repository.insert(
            session,
            account_id=None,
            top_up_id=tombstone.id,
            source=source,
            product=intent.metadata.get("pack_id", "")[:100],
            credits=0,  # nothing was credited: there is no account
            amount=late.money.charged,
            amount_subtotal=late.money.subtotal,
            currency=late.money.currency,
            status="paid",
            now=ctx.now,
            stripe_checkout_session_id=late.session_id or tombstone.stripe_checkout_session_id,
            stripe_payment_intent_id=intent.intent_id,
            invoice_id=late.invoice.id if late.invoice is not None else None,
        )
        # Detached from the start: no customer, no links to Stripe's hosted pages.
        payment.invoice_number = late.invoice.number if late.invoice is not None else None
        payment.detached_at = ctx.now
    elif payment.status not in ("paid", "review"):
        # Recorded `pending` with its account (a bank debit), detached by the deletion since.
        payment.status, payment.credits = "paid", 0
        payment.amount, payment.currency = late.money.charged, late.money.currency
    payment.stripe_payment_intent_id = intent.intent_id
    payment.stripe_charge_id = intent.charge_id
    payment.paid_at = payment.paid_at or ctx.now
    await session.flush()
    await apply_charge_refunds(session, charge, ctx)
    log.warning(
        "payment %s made after its account was deleted: refunded",
        payment.id,
        extra={"code": "account_deleted"},
    )
    return "account_deleted"
