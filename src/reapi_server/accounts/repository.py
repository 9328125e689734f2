"""All SQL about accounts (wallet rows) and memberships."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import Account, Membership, User

__all__ = [
    "add_member",
    "delete_memberships",
    "find_owned_by_email",
    "get",
    "insert",
    "owned_account_ids",
    "owner_email",
]


async def insert(session: AsyncSession, now: float) -> Account:
    account = Account(id=new_id("acct"), balance=0, reserved=0, created_at=now)
    session.add(account)
    await session.flush()
    return account


async def get(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def add_member(
    session: AsyncSession, *, user_id: str, account_id: str, role: str, now: float
) -> None:
    session.add(Membership(user_id=user_id, account_id=account_id, role=role, created_at=now))
    await session.flush()


async def owned_account_ids(session: AsyncSession, user_id: str) -> list[str]:
    result = await session.execute(
        select(Membership.account_id)
        .where(Membership.user_id == user_id, Membership.role == "owner")
        .order_by(Membership.created_at)
    )
    return list(result.scalars())


async def find_owned_by_email(session: AsyncSession, email: str) -> Account | None:
    """The account owned by the user with this (normalised) email."""
    result = await session.execute(
        select(Account)
        .join(Membership, Membership.account_id == Account.id)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.role == "owner")
        .order_by(Membership.created_at)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def owner_email(session: AsyncSession, account_id: str) -> str | None:
    result = await session.execute(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .limit(1)
    )
    return result.scalar_one_or_none()


async def delete_memberships(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(Membership).where(Membership.user_id == user_id))
