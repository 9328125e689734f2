"""All SQL about accounts (wallet rows) and memberships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import CursorResult, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..ids import new_id
from ..models import Account, Membership, User

__all__ = [
    "add_member",
    "count_disabled",
    "delete_account",
    "delete_memberships",
    "deleted_account_ids",
    "find_owned_by_email",
    "get",
    "insert",
    "is_open",
    "mark_deleted",
    "memberships_of",
    "owned_account_ids",
    "owned_by",
    "owner_email",
    "owners",
    "set_disabled",
]

_IS_OPEN = Statement(
    select(Account.id).where(Account.id == bindparam("b_account"), Account.deleted_at.is_(None))
)


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


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


async def memberships_of(session: AsyncSession, user_id: str) -> list[Membership]:
    result = await session.execute(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.created_at)
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


async def is_open(session: AsyncSession | Tx, account_id: str) -> bool:
    """The account exists and is not being deleted (rows may still be written for it)."""
    return await as_tx(session).first(_IS_OPEN, {"b_account": account_id}) is not None


async def mark_deleted(session: AsyncSession, account_id: str, now: float) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.deleted_at.is_(None))
        .values(deleted_at=now)
        .execution_options(synchronize_session=False)
    )


async def deleted_account_ids(session: AsyncSession, limit: int) -> list[str]:
    """Accounts marked deleted whose rows are not all gone yet."""
    result = await session.execute(
        select(Account.id)
        .where(Account.deleted_at.is_not(None))
        .order_by(Account.deleted_at)
        .limit(limit)
    )
    return list(result.scalars())


async def set_disabled(session: AsyncSession, account_id: str, at: float | None) -> bool:
    """Disable the account at `at`, or enable it (None); False when it already was."""
    state = Account.disabled_at.is_(None) if at is not None else Account.disabled_at.is_not(None)
    result = await session.execute(
        update(Account).where(Account.id == account_id, state).values(disabled_at=at)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def owners(session: AsyncSession, account_id: str) -> list[User]:
    result = await session.execute(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .order_by(Membership.created_at)
    )
    return list(result.scalars())


async def delete_account(session: AsyncSession, account_id: str) -> bool:
    """The wallet row itself, and whatever memberships are left on it."""
    await session.execute(delete(Membership).where(Membership.account_id == account_id))
    return _changed(await session.execute(delete(Account).where(Account.id == account_id))) == 1


async def owned_by(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, Account]:
    """user id → the (first) account each of these users owns."""
    if not user_ids:
        return {}
    result = await session.execute(
        select(Membership.user_id, Account)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.user_id.in_(user_ids), Membership.role == "owner")
        .order_by(Membership.created_at.desc())
    )
    return {str(row[0]): row[1] for row in result}


async def count_disabled(session: AsyncSession) -> int:
    query = select(func.count()).select_from(Account).where(Account.disabled_at.is_not(None))
    return int((await session.execute(query)).scalar_one())
