"""All SQL of the retention job. Each statement deletes one batch of rows older than a cutoff;
run by several processes at once, a row is deleted (and its object queued) by exactly one.

Usage rows and outputs are found account by account, through their `(account_id, created_at)`
index: every request writes these rows, and an index on `created_at` alone would be one more
b-tree written with each of them, for this job only (migration 0020). Every row has its account
(deleting an account deletes them), so walking the accounts finds them all; a batch costs a
look into each account's index until it is full, and the last, short one a look into every
account's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from ..models import Account, StoredOutput, UsageRecord, VideoJob

__all__ = [
    "delete_expired_jobs",
    "delete_expired_outputs",
    "delete_expired_usage",
    "expired_by_account",
]

#: Only jobs that reached an end: an unfinished job still holds credit and is being polled.
_FINAL_JOB_STATES = ("completed", "failed")


async def delete_expired_outputs(session: AsyncSession, cutoff: float, limit: int) -> list[str]:
    """Delete up to `limit` output rows created before `cutoff`; the storage keys of exactly
    the rows this statement deleted (RETURNING), so that no object is queued twice."""
    batch = expired_by_account(_dialect(session), StoredOutput, cutoff, limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(StoredOutput)
        .where(StoredOutput.id.in_(batch.scalar_subquery()))
        .returning(StoredOutput.storage_key)
    )
    return list(result.scalars())


async def delete_expired_usage(session: AsyncSession, cutoff: float, limit: int) -> int:
    batch = expired_by_account(_dialect(session), UsageRecord, cutoff, limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(UsageRecord).where(UsageRecord.id.in_(batch.scalar_subquery()))
    )
    return int(result.rowcount)


async def delete_expired_jobs(session: AsyncSession, cutoff: float, limit: int) -> int:
    batch = (
        select(VideoJob.id)
        .where(VideoJob.created_at < cutoff, VideoJob.status.in_(_FINAL_JOB_STATES))
        .limit(limit)
    )
    connection = await session.connection()
    result = await connection.execute(
        delete(VideoJob).where(VideoJob.id.in_(batch.scalar_subquery()))
    )
    return int(result.rowcount)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def expired_by_account(
    dialect: str, model: type[StoredOutput] | type[UsageRecord], cutoff: float, limit: int
) -> Select[Any]:
    """The ids of up to `limit` rows of `model` created before `cutoff`, looked up in each
    account's part of the `(account_id, created_at)` index. SQLite walks the accounts and
    searches the index for each one (`IN` on the index's first column); PostgreSQL is told to
    by a LATERAL subquery, which it runs once per account (its planner could otherwise prefer
    reading the whole table)."""
    if dialect == "postgresql":
        rows = (
            select(model.id)
            .where(model.account_id == Account.id, model.created_at < cutoff)
            .limit(limit)
            .lateral("expired")
        )
        return select(rows.c.id).select_from(Account).join(rows, true()).limit(limit)
    return (
        select(model.id)
        .where(model.account_id.in_(select(Account.id)), model.created_at < cutoff)
        .limit(limit)
    )
