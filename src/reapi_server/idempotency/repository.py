"""All SQL about idempotency records."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..models import IdempotencyRecord
from ..pg_pipeline import own_rows

__all__ = [
    "abandoned",
    "claim",
    "complete",
    "delete_for_account",
    "drop",
    "drop_unanswered",
    "expired",
    "find",
    "list_for_account",
    "renew",
]

# Compiled once per dialect: the answer is recorded in the request's own group commit.
#: Its own request's row only: may follow later ops' statements in a run (`pg_pipeline`).
_COMPLETE = own_rows(
    Statement(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == bindparam("b_id"))
        .values(state="done", status_code=bindparam("b_status"), response=bindparam("b_response"))
    )
)


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
    alive_until: float,
) -> int:
    record = IdempotencyRecord(
        account_id=account_id,
        key_hash=key_hash,
        fingerprint=fingerprint,
        state="in_progress",
        created_at=now,
        expires_at=expires_at,
        alive_until=alive_until,
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


async def abandoned(session: AsyncSession, now: float) -> int:
    """In-progress records of requests whose process died: nobody pushed their `alive_until`
    back (see `local`), and nobody will ever complete them."""
    return await _delete_unheld(
        session,
        IdempotencyRecord.state == "in_progress",
        IdempotencyRecord.alive_until < now,
    )


async def renew(session: AsyncSession, record_ids: Sequence[int], alive_until: float) -> list[int]:
    """Push back `alive_until` of these records, those still in progress and not in use by
    another transaction (which is answering or dropping them): their requests are running.
    The ids renewed."""
    if not record_ids:
        return []
    free = (
        select(IdempotencyRecord.id)
        .where(IdempotencyRecord.id.in_(record_ids), IdempotencyRecord.state == "in_progress")
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id.in_(free.scalar_subquery()))
        .values(alive_until=alive_until)
        .returning(IdempotencyRecord.id)
        .execution_options(synchronize_session=False)
    )
    return [int(record_id) for record_id in result.scalars()]


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.account_id == account_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
