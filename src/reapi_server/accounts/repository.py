"""All SQL about accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import Account

__all__ = ["find_by_email", "get", "insert"]


async def insert(session: AsyncSession, email: str, now: float) -> Account:
    account = Account(id=new_id("acct"), email=email, balance=0, reserved=0, created_at=now)
    session.add(account)
    await session.flush()
    return account


async def find_by_email(session: AsyncSession, email: str) -> Account | None:
    result = await session.execute(select(Account).where(Account.email == email))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)
