"""All SQL about idempotency records."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import IdempotencyRecord

__all__ = [
    "abandoned",
    "claim",
    "complete",
    "delete_for_account",
    "drop",
    "expired",
    "find",
    "list_for_account",
]


async def find(session: AsyncSession, account_id: str, key_hash: str) -> IdempotencyRecord | None:
    result = await session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.account_id == account_id, IdempotencyRecord.key_hash == key_hash
        )
    )
    return result.scalar_one_or_none()


async def list_for_account(session: AsyncSession, account_id: str) -> list[IdempotencyRecord]:
    result = await session.execute(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.account_id == account_id)
        .order_by(IdempotencyRecord.created_at, IdempotencyRecord.id)
    )
    return list(result.scalars())


async def claim(
    session: AsyncSession,
    account_id: str,
    key_hash: str,
    fingerprint: str,
    now: float,
    expires_at: float,
) -> int:
    record = IdempotencyRecord(
        account_id=account_id,
        key_hash=key_hash,
        fingerprint=fingerprint,
        state="in_progress",
        created_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    await session.flush()
    return record.id


async def complete(session: AsyncSession, record_id: int, status_code: int, response: str) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(state="done", status_code=status_code, response=response)
    )


async def drop(session: AsyncSession, record_id: int) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def expired(session: AsyncSession, now: float) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def abandoned(session: AsyncSession, started_before: float) -> int:
    """In-progress records of requests whose process died (nobody will ever complete them)."""
    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.state == "in_progress",
            IdempotencyRecord.created_at < started_before,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.account_id == account_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
