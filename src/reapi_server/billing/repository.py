"""All SQL about top-ups, payment records, refunds, disputes and billing profiles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import CursorResult, Float, delete, func, literal, or_, select, update
from sqlalchemy import insert as insert_into
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import BillingProfile, DeletedTopUp, Dispute, Payment, Refund, TopUp

__all__ = [
    "auto_spent_since",
    "clear_detached_links",
    "delete_expired",
    "delete_tombstones_before",
    "deleted_top_up",
    "detach",
    "detach_account",
    "dispute",
    "disputes_for_account",
    "find_payment",
    "forget_account",
    "get_payment",
    "get_top_up",
    "insert",
    "insert_auto_top_up",
    "insert_top_up",
    "last_auto_top_up",
    "list_for_account",
    "list_payments",
    "lock_payment",
    "open_checkout_sessions",
    "open_disputes",
    "payment_keys",
    "profile",
    "profile_or_new",
    "refunds_for_account",
    "refunds_of",
]


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# -- top-ups ------------------------------------------------------------------------------------

#: Top-ups that charged, or may still: `review` charged too (another amount than asked).
_CHARGING = ("open", "pending", "paid", "review")


async def insert_top_up(session: AsyncSession, top_up: TopUp) -> TopUp:
    session.add(top_up)
    await session.flush()
    return top_up


async def insert_auto_top_up(session: AsyncSession, top_up: TopUp) -> bool:
    """Insert an automatic top-up unless the account has one in flight (the partial unique
    index decides, in whichever process or transaction races this one)."""
    try:
        async with session.begin_nested():
            session.add(top_up)
            await session.flush()
    except IntegrityError:  # the savepoint's rollback took the row out of the session too
        return False
    return True


async def get_top_up(session: AsyncSession, top_up_id: str) -> TopUp | None:
    return await session.get(TopUp, top_up_id, populate_existing=True)


async def last_auto_top_up(
    session: AsyncSession, account_id: str, *, charging_only: bool = False
) -> TopUp | None:
    """The account's latest automatic top-up (with `charging_only`: of those that charged or
    may still charge; a refused one paused auto top-up instead)."""
    query = select(TopUp).where(TopUp.account_id == account_id, TopUp.kind == "auto")
    if charging_only:
        query = query.where(TopUp.status.in_(_CHARGING))
    result = await session.execute(
        query.order_by(TopUp.created_at.desc(), TopUp.id.desc()).limit(1)
    )
    return result.scalar_one_or_none()


async def auto_spent_since(session: AsyncSession, account_id: str, since: float) -> int:
    """Money charged or being charged by automatic top-ups since `since` (minor units)."""
    result = await session.execute(
        select(func.coalesce(func.sum(TopUp.amount), 0)).where(
            TopUp.account_id == account_id,
            TopUp.kind == "auto",
            TopUp.status.in_(_CHARGING),
            TopUp.created_at >= since,
        )
    )
    return int(result.scalar_one())


# -- payments -----------------------------------------------------------------------------------


async def insert(
    session: AsyncSession,
    *,
    account_id: str | None,
    product: str,
    credits: int,
    amount: int,
    currency: str,
    status: str,
    now: float,
    amount_subtotal: int | None = None,
    top_up_id: str | None = None,
    source: str = "checkout",
    stripe_customer_id: str | None = None,
    stripe_checkout_session_id: str | None = None,
    stripe_payment_intent_id: str | None = None,
    invoice_id: str | None = None,
    invoice_url: str | None = None,
) -> Payment:
    payment = Payment(
        id=new_id("pay"),
        account_id=account_id,
        top_up_id=top_up_id,
        source=source,
        stripe_customer_id=stripe_customer_id,
        stripe_checkout_session_id=stripe_checkout_session_id,
        stripe_payment_intent_id=stripe_payment_intent_id,
        invoice_id=invoice_id,
        invoice_url=invoice_url,
        product=product,
        credits=credits,
        amount=amount,
        amount_subtotal=amount_subtotal,
        currency=currency,
        status=status,
        amount_refunded=0,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    return payment


async def get_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id, populate_existing=True)


async def find_payment(
    session: AsyncSession,
    *,
    top_up_id: str | None = None,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
) -> Payment | None:
    """The payment of a top-up, a PaymentIntent or a charge (the first given that matches)."""
    for column, value in (
        (Payment.top_up_id, top_up_id),
        (Payment.stripe_payment_intent_id, payment_intent_id),
        (Payment.stripe_charge_id, charge_id),
    ):
        if value is None:
            continue
        result = await session.execute(
            select(Payment).where(column == value).execution_options(populate_existing=True)
        )
        payment = result.scalars().first()
        if payment is not None:
            return payment
    return None


async def payment_keys(session: AsyncSession, stripe_object_id: str) -> list[str]:
    """The ids other events name a payment by (its PaymentIntent, its charge, our top-up), for
    the payment of a Checkout Session or PaymentIntent `stripe_object_id`; none when none."""
    result = await session.execute(
        select(Payment.stripe_payment_intent_id, Payment.stripe_charge_id, Payment.top_up_id)
        .where(
            or_(
                Payment.stripe_checkout_session_id == stripe_object_id,
                Payment.stripe_payment_intent_id == stripe_object_id,
            )
        )
        .limit(1)
    )
    row = result.first()
    return [key for key in row if key] if row is not None else []


async def lock_payment(session: AsyncSession, payment_id: str) -> None:
    """Hold the payment's row until the transaction ends (PostgreSQL; SQLite has one writer):
    two refunds or disputes of it are applied one after the other."""
    await session.execute(select(Payment.id).where(Payment.id == payment_id).with_for_update())


async def list_for_account(session: AsyncSession, account_id: str) -> list[Payment]:
    result = await session.execute(
        select(Payment)
        .where(Payment.account_id == account_id)
        .order_by(Payment.created_at, Payment.id)
    )
    return list(result.scalars())


async def list_payments(
    session: AsyncSession, *, limit: int = 100, account_id: str | None = None
) -> list[Payment]:
    """The latest payments, newest first (every account, or one)."""
    query = select(Payment).order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(Payment.account_id == account_id)
    return list((await session.execute(query)).scalars())


#: What a detached payment no longer holds: links to Stripe's hosted invoice page, its PDF
#: and the charge's receipt, each showing the buyer's name, email and card to whoever has it.
#: The invoice's id and number stay (what the records need).
_HOSTED_LINKS_CLEARED = {"invoice_url": None, "invoice_pdf_url": None, "receipt_url": None}


async def detach(session: AsyncSession, payment_ids: Sequence[str], *, now: float) -> int:
    if not payment_ids:
        return 0
    result = await session.execute(
        update(Payment)
        .where(Payment.id.in_(payment_ids))
        .values(account_id=None, detached_at=now, **_HOSTED_LINKS_CLEARED)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def detach_account(session: AsyncSession, account_id: str, *, now: float) -> int:
    """Keep the account's payments without it (the account is being deleted), without their
    hosted links; how many."""
    result = await session.execute(
        update(Payment)
        .where(Payment.account_id == account_id)
        .values(account_id=None, detached_at=now, **_HOSTED_LINKS_CLEARED)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def clear_detached_links(session: AsyncSession) -> int:
    """Detached payments that still hold hosted links (detached before links were cleared, or
    credited after their account went) lose them; how many."""
    result = await session.execute(
        update(Payment)
        .where(
            Payment.detached_at.is_not(None),
            or_(
                Payment.invoice_url.is_not(None),
                Payment.invoice_pdf_url.is_not(None),
                Payment.receipt_url.is_not(None),
            ),
        )
        .values(**_HOSTED_LINKS_CLEARED)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def open_checkout_sessions(session: AsyncSession, account_id: str) -> list[str]:
    """The Checkout Sessions of the account's top-ups still waiting to be paid."""
    result = await session.execute(
        select(TopUp.stripe_checkout_session_id).where(
            TopUp.account_id == account_id,
            TopUp.kind == "checkout",
            TopUp.status == "open",
            TopUp.stripe_checkout_session_id.is_not(None),
        )
    )
    return [str(found) for found in result.scalars()]


#: Top-ups that may still be paid: a checkout not paid yet (its session may still be open, if
#: expiring it failed), or a payment Stripe is processing (a bank debit settles in days).
_PAYABLE = ("open", "pending")


async def forget_account(session: AsyncSession, account_id: str, *, now: float) -> None:
    """The account is being deleted: its billing profile (Stripe customer, saved card, auto
    top-up settings) and top-ups go, a tombstone (ids only) staying for each top-up that may
    still be paid (`after_deletion`); its disputes stay with their payments, detached."""
    connection = await session.connection()
    payable = select(
        TopUp.id,
        TopUp.stripe_checkout_session_id,
        TopUp.stripe_payment_intent_id,
        literal(now, Float),
    ).where(TopUp.account_id == account_id, TopUp.status.in_(_PAYABLE))
    await connection.execute(
        insert_into(DeletedTopUp).from_select(
            ["id", "stripe_checkout_session_id", "stripe_payment_intent_id", "deleted_at"],
            payable,
        )
    )
    await connection.execute(delete(BillingProfile).where(BillingProfile.account_id == account_id))
    await connection.execute(delete(TopUp).where(TopUp.account_id == account_id))
    await connection.execute(
        update(Dispute).where(Dispute.account_id == account_id).values(account_id=None)
    )


async def deleted_top_up(session: AsyncSession, top_up_id: str) -> DeletedTopUp | None:
    """The tombstone of a deleted account's top-up that could still be paid, if any."""
    return await session.get(DeletedTopUp, top_up_id, populate_existing=True)


async def delete_tombstones_before(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Tombstones of top-ups deleted before `cutoff` (any payment of theirs has settled)."""
    batch = select(DeletedTopUp.id).where(DeletedTopUp.deleted_at < cutoff).limit(limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(DeletedTopUp).where(DeletedTopUp.id.in_(batch.scalar_subquery()))
    )
    return _changed(result)


async def delete_expired(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Delete up to `limit` payments made before `cutoff` (attached or not), with their
    refunds and disputes."""
    batch = select(Payment.id).where(Payment.created_at < cutoff).limit(limit)
    ids = list((await session.execute(batch)).scalars())
    if not ids:
        return 0
    connection = await session.connection()
    # Explicitly (not only by cascade): SQLite enforces foreign keys per connection setting.
    await connection.execute(delete(Refund).where(Refund.payment_id.in_(ids)))
    await connection.execute(delete(Dispute).where(Dispute.payment_id.in_(ids)))
    result = await connection.execute(delete(Payment).where(Payment.id.in_(ids)))
    return _changed(result)


# -- refunds and disputes -----------------------------------------------------------------------


async def refunds_of(session: AsyncSession, payment_id: str) -> list[Refund]:
    result = await session.execute(
        select(Refund)
        .where(Refund.payment_id == payment_id)
        .order_by(Refund.created_at, Refund.id)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def refunds_for_account(session: AsyncSession, account_id: str) -> list[Refund]:
    result = await session.execute(
        select(Refund)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Payment.account_id == account_id)
        .order_by(Refund.created_at, Refund.id)
    )
    return list(result.scalars())


async def dispute(session: AsyncSession, dispute_id: str) -> Dispute | None:
    return await session.get(Dispute, dispute_id, populate_existing=True)


async def open_dispute_of(session: AsyncSession, payment_id: str) -> Dispute | None:
    """The payment's open dispute (Stripe allows one per charge), if any."""
    result = await session.execute(
        select(Dispute)
        .where(Dispute.payment_id == payment_id, Dispute.status == "open")
        .order_by(Dispute.created_at, Dispute.id)
        .execution_options(populate_existing=True)
    )
    return result.scalars().first()


async def disputes_for_account(session: AsyncSession, account_id: str) -> list[Dispute]:
    result = await session.execute(
        select(Dispute)
        .join(Payment, Payment.id == Dispute.payment_id)
        .where(Payment.account_id == account_id)
        .order_by(Dispute.created_at, Dispute.id)
    )
    return list(result.scalars())


async def open_disputes(session: AsyncSession, account_id: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Dispute)
        .where(Dispute.account_id == account_id, Dispute.status == "open")
    )
    return int(result.scalar_one())


# -- billing profiles ---------------------------------------------------------------------------


async def profile(session: AsyncSession, account_id: str) -> BillingProfile | None:
    return await session.get(BillingProfile, account_id, populate_existing=True)


async def profile_or_new(session: AsyncSession, account_id: str, now: float) -> BillingProfile:
    found = await profile(session, account_id)
    if found is not None:
        return found
    created = BillingProfile(
        account_id=account_id,
        auto_enabled=False,
        auto_threshold=0,
        auto_monthly_cap=0,
        updated_at=now,
    )
    session.add(created)
    await session.flush()
    return created
