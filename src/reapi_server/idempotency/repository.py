"""All SQL about idempotency records."""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..models import IdempotencyRecord

__all__ = ["abandoned", "claim", "complete", "drop", "drop_unanswered", "expired", "find"]

# Compiled once per dialect: the answer is recorded in the request's own group commit.
_COMPLETE = Statement(
    update(IdempotencyRecord)
    .where(IdempotencyRecord.id == bindparam("b_id"))
    .values(state="done", status_code=bindparam("b_status"), response=bindparam("b_response"))
)


async def find(session: AsyncSession, account_id: str, key_hash: str) -> IdempotencyRecord | None:
    result = await session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.account_id == account_id, IdempotencyRecord.key_hash == key_hash
        )
    )
    return result.scalar_one_or_none()


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


async def complete(
    session: AsyncSession | Tx, record_id: int, status_code: int, response: str
) -> None:
    await as_tx(session).execute(
        _COMPLETE, {"b_id": record_id, "b_status": status_code, "b_response": response}
    )


async def drop(session: AsyncSession, record_id: int) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def drop_unanswered(session: AsyncSession, record_id: int) -> None:
    """Drop a record whose request failed; never one whose answer is recorded (and paid for)."""
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_progress"
        )
    )


async def _delete_unheld(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    """Delete the records matching `conditions` that no other transaction holds: a sweeper
    never waits for a record in use (PostgreSQL's SKIP LOCKED; SQLite has a single writer)."""
    unheld = select(IdempotencyRecord.id).where(*conditions).with_for_update(skip_locked=True)
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(unheld.scalar_subquery()))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def expired(session: AsyncSession, now: float) -> int:
    return await _delete_unheld(session, IdempotencyRecord.expires_at < now)


async def abandoned(session: AsyncSession, started_before: float) -> int:
    """In-progress records of requests whose process died (nobody will ever complete them)."""
    return await _delete_unheld(
        session,
        IdempotencyRecord.state == "in_progress",
        IdempotencyRecord.created_at < started_before,
    )
