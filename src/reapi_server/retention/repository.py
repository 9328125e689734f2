"""All SQL of the retention job. Each statement deletes one batch of rows older than a cutoff;
run by several processes at once, a row is deleted (and its object queued) by exactly one."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import StoredOutput, UsageRecord, VideoJob

__all__ = ["delete_expired_jobs", "delete_expired_outputs", "delete_expired_usage"]

#: Only jobs that reached an end: an unfinished job still holds credit and is being polled.
_FINAL_JOB_STATES = ("completed", "failed")


async def delete_expired_outputs(session: AsyncSession, cutoff: float, limit: int) -> list[str]:
    """Delete up to `limit` output rows created before `cutoff`; the storage keys of exactly
    the rows this statement deleted (RETURNING), so that no object is queued twice."""
    batch = select(StoredOutput.id).where(StoredOutput.created_at < cutoff).limit(limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(StoredOutput)
        .where(StoredOutput.id.in_(batch.scalar_subquery()))
        .returning(StoredOutput.storage_key)
    )
    return list(result.scalars())


async def delete_expired_usage(session: AsyncSession, cutoff: float, limit: int) -> int:
    batch = select(UsageRecord.id).where(UsageRecord.created_at < cutoff).limit(limit)
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
