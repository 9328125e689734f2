"""All SQL about API keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import Account, ApiKey, WebhookDelivery

__all__ = [
    "count_active",
    "delete_for_account",
    "delete_revoked_before",
    "find_active",
    "get",
    "get_for_account",
    "in_force",
    "insert",
    "list_for_account",
    "page_for_account",
    "revoke",
    "revoke_all",
    "standing",
    "touch",
    "update_key",
]


async def insert(
    session: AsyncSession,
    account_id: str,
    key_hash: str,
    last4: str,
    name: str,
    now: float,
    *,
    kind: str = "model",
    columns: Mapping[str, Any] | None = None,
) -> ApiKey:
    """A new key; `columns`: its limits (`KeyLimits.columns`)."""
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        key_hash=key_hash,
        last4=last4,
        name=name,
        created_at=now,
        kind=kind,
        period_start=0.0,
        period_spend=0,
        active_videos=0,
        **(columns or {}),
    )
    session.add(key)
    await session.flush()
    return key


async def find_active(session: AsyncSession, key_hash: str) -> tuple[ApiKey, bool] | None:
    """The unrevoked key with this hash, and whether its account is disabled."""
    result = await session.execute(
        select(ApiKey, Account.disabled_at.is_not(None))
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    row = result.one_or_none()
    return None if row is None else (row[0], bool(row[1]))


def _unrevoked_unexpired(key_id: str, now: float) -> tuple[ColumnElement[bool], ...]:
    """The key `key_id`, if it is neither revoked nor expired at `now`."""
    return (
        ApiKey.id == key_id,
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )


async def in_force(session: AsyncSession, key_id: str, now: float) -> bool:
    """The key is unrevoked, unexpired and its account enabled (`find_active`'s rule, by id)."""
    result = await session.execute(
        select(ApiKey.id)
        .join(Account, Account.id == ApiKey.account_id)
        .where(*_unrevoked_unexpired(key_id, now), Account.disabled_at.is_(None))
    )
    return result.first() is not None


async def standing(session: AsyncSession, key_id: str, now: float) -> bool | None:
    """None when the key is revoked or expired or its account closed (`deleted_at`), else
    whether its account is disabled: read now, whatever a process's key cache says."""
    result = await session.execute(
        select(Account.disabled_at.is_not(None))
        .join(ApiKey, Account.id == ApiKey.account_id)
        .where(*_unrevoked_unexpired(key_id, now), Account.deleted_at.is_(None))
    )
    row = result.one_or_none()
    return None if row is None else bool(row[0])


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def get_for_account(session: AsyncSession, account_id: str, key_id: str) -> ApiKey | None:
    """The key, if it belongs to this account (revoked or not)."""
    result = await session.execute(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
    )
    return result.scalar_one_or_none()


async def update_key(session: AsyncSession, key_id: str, values: Mapping[str, Any]) -> None:
    """Set columns of a key (its name, its limits); never its counters, which only the credit
    statements change."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


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


async def page_for_account(
    session: AsyncSession,
    account_id: str,
    *,
    limit: int,
    after: tuple[bool, float, str] | None = None,
    revoked: bool | None = None,
) -> list[ApiKey]:
    """Up to `limit` keys of the account: those not revoked first, then the revoked ones, each
    newest first (id breaking ties); `after`: (revoked, created_at, id) of the last key of the
    previous page; `revoked`: only those (True) or only the others (False)."""
    group = case((ApiKey.revoked_at.is_(None), 0), else_=1)
    query = select(ApiKey).where(ApiKey.account_id == account_id)
    if revoked is not None:
        query = query.where(
            ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None)
        )
    if after is not None:
        was_revoked, created_at, key_id = after
        last = int(was_revoked)
        older = or_(
            ApiKey.created_at < created_at,
            and_(ApiKey.created_at == created_at, ApiKey.id < key_id),
        )
        query = query.where(or_(group > last, and_(group == last, older)))
    order = (group, ApiKey.created_at.desc(), ApiKey.id.desc())
    result = await session.execute(query.order_by(*order).limit(limit))
    return list(result.scalars())


async def count_active(session: AsyncSession, account_id: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
    )
    return int(result.scalar_one())


async def revoke_all(session: AsyncSession, account_id: str, now: float) -> int:
    """Revoke every active key of the account; how many."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    result = await session.execute(delete(ApiKey).where(ApiKey.account_id == account_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_revoked_before(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Delete up to `limit` keys revoked before `cutoff` (the retention job, with the usage
    metadata's cutoff: no usage row, job or credit hold that could name them is left). Kept:
    a key with an unfinished video (it settles on the key's spend counter) or a webhook
    delivery still being sent (signed with the key's secret). Their spend alerts go with them
    (ON DELETE CASCADE). Rows another transaction holds are skipped, never waited for.

    No index on `revoked_at`: the statement reads the key table, which this job and the
    creation throttle (`api_keys.throttle`) keep small, once a run."""
    sending = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.api_key_id == ApiKey.id, WebhookDelivery.status == "pending")
        .exists()
    )
    batch = (
        select(ApiKey.id)
        .where(ApiKey.revoked_at < cutoff, ApiKey.active_videos == 0, ~sending)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(ApiKey)
        .where(ApiKey.id.in_(batch.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def touch(session: AsyncSession, key_ids: Sequence[str], at: float) -> None:
    """Record that these keys were used at `at` (unless a later use is recorded already). A key
    whose row another transaction holds (a request being charged) is skipped, never waited
    for: this UPDATE locks no account first (`lock_order`), and a key in use is touched again
    soon."""
    if not key_ids:
        return
    free = (
        select(ApiKey.id)
        .where(
            ApiKey.id.in_(key_ids),
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at),
        )
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id.in_(free.scalar_subquery()))
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )
