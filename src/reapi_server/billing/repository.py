"""All SQL about payment records."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import Payment

__all__ = ["delete_expired", "detach", "detach_account", "insert", "list_for_account"]


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def insert(
    session: AsyncSession,
    *,
    account_id: str,
    product: str,
    credits: int,
    amount: int,
    currency: str,
    status: str,
    now: float,
    stripe_customer_id: str | None = None,
    stripe_checkout_session_id: str | None = None,
    stripe_payment_intent_id: str | None = None,
    invoice_id: str | None = None,
    invoice_url: str | None = None,
) -> Payment:
    payment = Payment(
        id=new_id("pay"),
        account_id=account_id,
        stripe_customer_id=stripe_customer_id,
        stripe_checkout_session_id=stripe_checkout_session_id,
        stripe_payment_intent_id=stripe_payment_intent_id,
        invoice_id=invoice_id,
        invoice_url=invoice_url,
        product=product,
        credits=credits,
        amount=amount,
        currency=currency,
        status=status,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    return payment


async def list_for_account(session: AsyncSession, account_id: str) -> list[Payment]:
    result = await session.execute(
        select(Payment)
        .where(Payment.account_id == account_id)
        .order_by(Payment.created_at, Payment.id)
    )
    return list(result.scalars())


async def detach(session: AsyncSession, payment_ids: Sequence[str], *, now: float) -> int:
    if not payment_ids:
        return 0
    result = await session.execute(
        update(Payment)
        .where(Payment.id.in_(payment_ids))
        .values(account_id=None, detached_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def detach_account(session: AsyncSession, account_id: str, *, now: float) -> int:
    """Keep the account's payments without it (the account is being deleted); how many."""
    result = await session.execute(
        update(Payment)
        .where(Payment.account_id == account_id)
        .values(account_id=None, detached_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


async def delete_expired(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Delete up to `limit` payments made before `cutoff` (attached or not)."""
    batch = select(Payment.id).where(Payment.created_at < cutoff).limit(limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(Payment).where(Payment.id.in_(batch.scalar_subquery()))
    )
    return _changed(result)
