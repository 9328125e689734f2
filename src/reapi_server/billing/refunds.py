"""Refunds take back the credits the refunded money bought.

Applied from the charge as Stripe has it now, with every refund of it (`charge.refunded` says
only that something changed): each refund not applied yet is applied once, by its id (a row of
its own, and a ledger row whose source is the refund's id). Credits follow money cumulatively:
after refunds of R in all of a payment of A for C credits, C * R / A credits (rounded down) have
been taken back, so two partial refunds take the sum of both and a full refund takes exactly C.

Credits already spent cannot come back from the balance. By default the rest is waived (the
operator refunded money for credit the person used); a refund the operator made with
`take_back=all` in its metadata turns the rest into debt instead, which the account pays from
its next purchase and which refuses its requests until then.

A refund while the payment's dispute is open (an inquiry can be refunded) finds its credits
taken back by the dispute already: that part (`covered_by_dispute`, up to what the dispute
took and earlier refunds have not claimed) is neither taken again nor written off, and the
dispute, if won, gives back only what no refund claimed. What the dispute made debt of, for
money now refunded, is waived like any spent credit a refund finds (`_forgive_dispute_debt`):
no debt stays for money that went back.

Credits held by running requests (`reserved`) are not spent yet: a cancelled request gives
them back to the balance. So while the balance does not cover a refund's credits and some are
held, the refund waits (`Waiting`) until the holds close (settled: spent, and waived or owed
then; released: back in the balance, and taken). Meanwhile the account takes no new hold
(`movements.REFUND_HOLD`: its requests answer 402 `refund_pending`), so an account that always
has requests running cannot keep a refund waiting: the holds in place close or expire, and the
retry loop applies it within seconds of that.

A refund of a payment not credited yet (its event came first) waits (`Waiting`).

A refund applied turns the account's auto top-up off (`pausing`): only its owner turns it on
again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits import movements
from ..models import Dispute, Payment, Refund
from . import repository
from .applying import Applying, Waiting, lock_account, payment_of
from .pausing import pause_for_money_back
from .stripe_api import StripeObject, listed

__all__ = ["TAKE_BACK_ALL", "apply_charge_refunds", "covered_by_dispute", "credits_for"]

#: A refund's metadata asking for spent credit to become debt rather than be waived.
TAKE_BACK_ALL = {"take_back": "all"}
#: Refunds whose money is on its way back (a failed or canceled one is not).
_COUNTED = ("succeeded", "pending")


def credits_for(payment: Payment, refunded: int) -> int:
    """The credits `refunded` (cumulative money, tax included as Stripe counts it) of this
    payment bought. None for a payment under review: it was never credited."""
    if payment.status != "paid":
        return 0
    refunded = min(max(refunded, 0), payment.amount)
    return payment.credits * refunded // payment.amount if payment.amount else 0


def covered_by_dispute(refund: Refund) -> int:
    """The refund's credits its payment's open dispute had taken back already."""
    return refund.credits - refund.credits_taken - refund.credits_debt - refund.credits_waived


def _sorted(refunds: list[StripeObject]) -> list[StripeObject]:
    return sorted(refunds, key=lambda refund: (int(refund.get("created") or 0), refund["id"]))


def _metadata(refund: Mapping[str, Any]) -> Mapping[str, Any]:
    value = refund.get("metadata")
    return value if isinstance(value, Mapping) else {}


def _requested_by(metadata: Mapping[str, Any]) -> str:
    """operator (admin, CLI), gateway (a payment after its account's deletion: `after_deletion`)
    or stripe (its dashboard, or Stripe itself)."""
    asked = metadata.get("requested_by")
    return asked if asked in ("operator", "gateway") else "stripe"


#: How soon a refund waiting for holds looks again: a hold may close at any moment.
HOLD_RETRY_SECONDS = 5.0


async def _unless_held(session: AsyncSession, account_id: str, credits: int) -> None:
    """`Waiting` while credits the balance does not cover may only be held, not spent. The
    account takes no new hold meanwhile (`movements.REFUND_HOLD`, set by whoever catches
    it), so the wait is bounded by the holds in place, which close or expire."""
    now = await movements.state(session, account_id)
    if now is not None and now[0] < credits and now[1] > 0:
        raise Waiting(
            "credits are held by running requests",
            hold_account=account_id,
            retry_after=HOLD_RETRY_SECONDS,
        )


async def _forgive_dispute_debt(
    session: AsyncSession,
    account_id: str,
    dispute: Dispute,
    covered_before: int,
    covered: int,
    *,
    source_id: str,
    now: float,
) -> None:
    """A refund of money its open dispute had taken the credits of: what the dispute made
    debt of (credits spent) is waived, as a refund waives spent credit, unless the operator
    asked for it back. The refunded credits map onto what the dispute took from the balance
    first, then onto its debt (as a refund alone would have taken the balance first); a debt
    a purchase paid meanwhile comes back to the balance (`movements.add` pays debt first)."""

    def debt_part(claimed: int) -> int:
        return min(max(claimed - dispute.credits_taken, 0), dispute.credits_debt)

    forgiven = debt_part(covered_before + covered) - debt_part(covered_before)
    if forgiven > 0:
        await movements.add(
            session, account_id, forgiven, kind="adjustment", source_id=source_id, now=now
        )


async def apply_charge_refunds(session: AsyncSession, charge: StripeObject, ctx: Applying) -> str:
    payment = await payment_of(session, charge)
    if payment is None:
        return "not_ours"
    await lock_account(session, payment.account_id)
    await repository.lock_payment(session, payment.id)
    await session.refresh(payment)
    applied = await repository.refunds_of(session, payment.id)
    known = {refund.id for refund in applied}
    refunded = sum(refund.amount for refund in applied)
    taken_so_far = sum(refund.credits for refund in applied)
    dispute = await repository.open_dispute_of(session, payment.id)
    covered_so_far = sum(covered_by_dispute(refund) for refund in applied)
    by_dispute = 0 if dispute is None else dispute.credits
    by_dispute = max(by_dispute - covered_so_far, 0)
    new = [
        refund
        for refund in _sorted(list(listed(charge.get("refunds"))))
        if refund.get("status") in _COUNTED and refund["id"] not in known
    ]
    for refund in new:
        amount = int(refund.get("amount") or 0)
        refunded += amount
        credits = max(credits_for(payment, refunded) - taken_so_far, 0)
        taken_so_far += credits
        covered = min(credits, by_dispute)
        by_dispute -= covered
        to_take = credits - covered
        metadata = _metadata(refund)
        take_back_all = metadata.get("take_back") == "all"
        if dispute is not None and covered and payment.account_id and not take_back_all:
            await _forgive_dispute_debt(
                session,
                payment.account_id,
                dispute,
                covered_so_far,
                covered,
                source_id=f"{refund['id']}:forgiven",
                now=ctx.now,
            )
        covered_so_far += covered
        row = Refund(
            id=str(refund["id"]),
            payment_id=payment.id,
            amount=amount,
            credits=credits,
            credits_taken=0,
            credits_debt=0,
            credits_waived=to_take,
            requested_by=_requested_by(metadata),
            created_at=ctx.now,  # our clock, as the payment's: one order in the history
        )
        if payment.account_id is not None and to_take > 0:
            await _unless_held(session, payment.account_id, to_take)
            moved = await movements.take_back(
                session,
                payment.account_id,
                to_take,
                kind="refund",
                source_id=row.id,
                now=ctx.now,
                into_debt=take_back_all,
            )
            if moved is not None:
                row.credits_taken, row.credits_debt = -moved.balance, moved.debt
                row.credits_waived = to_take - row.credits_taken - row.credits_debt
        session.add(row)
    payment.amount_refunded = refunded
    if payment.account_id is not None:
        await movements.lift_refund_hold(session, payment.account_id)  # waited, and is done
    if new and payment.account_id is not None:
        await pause_for_money_back(session, payment.account_id, "refunded", ctx)
    await session.flush()
    return "refunded" if new else "nothing"
