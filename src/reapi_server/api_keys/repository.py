"""All SQL about API keys."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import Account, ApiKey

__all__ = ["find_active", "get", "insert", "list_for_account", "revoke", "revoke_all"]


async def insert(
    session: AsyncSession, account_id: str, key_hash: str, last4: str, name: str, now: float
) -> ApiKey:
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        key_hash=key_hash,
        last4=last4,
        name=name,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return key


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def find_active(session: AsyncSession, key_hash: str) -> tuple[ApiKey, bool] | None:
    """The unrevoked key with this hash, and whether its account is disabled."""
    result = await session.execute(
        select(ApiKey, Account.disabled_at.is_not(None))
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    row = result.one_or_none()
    return None if row is None else (row[0], bool(row[1]))


async def revoke(
    session: AsyncSession, *, key_id: str | None, key_hash: str | None, now: float
) -> bool:
    condition = ApiKey.id == key_id if key_id else ApiKey.key_hash == key_hash
    result = await session.execute(
        update(ApiKey).where(condition, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_for_account(session: AsyncSession, account_id: str) -> list[ApiKey]:
    result = await session.execute(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at)
    )
    return list(result.scalars())


async def revoke_all(session: AsyncSession, account_id: str, now: float) -> int:
    """Revoke every active key of the account; how many."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
