"""Chargebacks: while a dispute is open, its credits are taken back and the account is on hold.

Applied from the dispute as Stripe has it now, so `charge.dispute.created` and `.closed` in
either order, or only one of them, end the same:

- first seen: the disputed credits (what the disputed money bought, less what refunds took
  already) are taken from the balance; what the balance does not cover becomes debt. The
  account goes on hold (`account_in_dispute`): its requests are refused by the credit hold.
- won (or an inquiry closed without a chargeback): the credits come back (paying the debt
  first, the rest to the balance), less what refunds made while it was open claimed of them
  (`refunds.covered_by_dispute`), and never more than the payment's credits not refunded:
  money refunded and credits given back never both;
- lost: they stay taken, and the debt stays until a purchase pays it.

The hold lifts once none of the account's disputes is open. A dispute first seen turns the
account's auto top-up off (`pausing`); won or not, only its owner turns it on again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits import movements
from ..models import Dispute
from . import repository
from .applying import Applying, lock_account, payment_of
from .pausing import pause_for_money_back
from .refunds import covered_by_dispute, credits_for
from .stripe_api import StripeObject

__all__ = ["HOLD_REASON", "apply_dispute"]

HOLD_REASON = "account_in_dispute"
_WON = ("won", "warning_closed")
_LOST = ("lost",)


async def apply_dispute(session: AsyncSession, dispute: StripeObject, ctx: Applying) -> str:
    payment = await payment_of(session, dispute)
    if payment is None:
        return "not_ours"
    account_id = payment.account_id
    await lock_account(session, account_id)
    await repository.lock_payment(session, payment.id)
    await session.refresh(payment)
    dispute_id = str(dispute["id"])
    row = await repository.dispute(session, dispute_id)
    outcome = "nothing"
    if row is None:
        row = await _open(session, dispute, payment.id, account_id, ctx)
        outcome = "disputed"
        if account_id is not None:
            await pause_for_money_back(session, account_id, "disputed", ctx)
    status = str(dispute.get("status") or "")
    if row.status == "open" and status in _WON:
        back = await _given_back(session, row, payment.id)
        if account_id is not None and back > 0:
            await movements.add(
                session,
                account_id,
                back,
                kind="dispute_won",
                source_id=f"{dispute_id}:won",
                now=ctx.now,
            )
        row.status, row.closed_at, outcome = "won", ctx.now, "won"
    elif row.status == "open" and status in _LOST:
        row.status, row.closed_at, outcome = "lost", ctx.now, "lost"
    await session.flush()
    if account_id is not None:
        if await repository.open_disputes(session, account_id):
            await movements.put_on_hold(session, account_id, HOLD_REASON)
        else:
            await movements.clear_hold(session, account_id)
    return outcome


async def _given_back(session: AsyncSession, row: Dispute, payment_id: str) -> int:
    """What a won dispute gives back: its credits no refund claimed, within the payment's
    credits not refunded."""
    payment = await repository.get_payment(session, payment_id)
    assert payment is not None
    refunds = await repository.refunds_of(session, payment_id)
    unclaimed = row.credits - sum(covered_by_dispute(refund) for refund in refunds)
    not_refunded = payment.credits - sum(refund.credits for refund in refunds)
    return max(min(unclaimed, not_refunded), 0)


async def _open(
    session: AsyncSession,
    dispute: StripeObject,
    payment_id: str,
    account_id: str | None,
    ctx: Applying,
) -> Dispute:
    payment = await repository.get_payment(session, payment_id)
    assert payment is not None
    refunded = sum(refund.credits for refund in await repository.refunds_of(session, payment_id))
    amount = int(dispute.get("amount") or 0)
    credits = min(credits_for(payment, amount), max(payment.credits - refunded, 0))
    row = Dispute(
        id=str(dispute["id"]),
        payment_id=payment_id,
        account_id=account_id,
        amount=amount,
        reason=str(dispute.get("reason") or "")[:64] or None,
        credits=credits,
        credits_taken=0,
        credits_debt=0,
        status="open",
        created_at=ctx.now,  # our clock, as the payment's: one order in the history
    )
    if account_id is not None and credits > 0:
        moved = await movements.take_back(
            session,
            account_id,
            credits,
            kind="dispute",
            source_id=f"{row.id}:taken",
            now=ctx.now,
            into_debt=True,
        )
        if moved is not None:
            row.credits_taken, row.credits_debt = -moved.balance, moved.debt
    session.add(row)
    await session.flush()
    return row
