"""All SQL about video jobs. Changes made by the poller are conditional on its lease, so a worker
that lost a job (its lease expired and another took it) cannot overwrite the new owner's work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ACTIVE_JOB_STATES, ApiKey, VideoJob

__all__ = [
    "active_count_for_key",
    "claim_due",
    "delete_job",
    "get",
    "get_for_account",
    "insert",
    "list_for_account",
    "lock_key",
    "stale_submissions",
    "update_if",
]

POLLED_STATES = ("queued", "in_progress")


async def lock_key(session: AsyncSession, key_id: str) -> None:
    """Serialise video creation per key (PostgreSQL row lock; SQLite already has one writer)."""
    await session.execute(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update())


async def active_count_for_key(session: AsyncSession, key_id: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(VideoJob)
        .where(VideoJob.api_key_id == key_id, VideoJob.status.in_(ACTIVE_JOB_STATES))
    )
    return int(result.scalar_one())


async def get(session: AsyncSession, job_id: str) -> VideoJob | None:
    return await session.get(VideoJob, job_id)


async def insert(session: AsyncSession, job: VideoJob) -> None:
    # Unset attributes are left out, so that column defaults apply.
    values = {
        c.key: getattr(job, c.key)
        for c in VideoJob.__table__.columns
        if getattr(job, c.key) is not None
    }
    connection = await session.connection()
    await connection.execute(sa_insert(VideoJob), values)


async def get_for_account(session: AsyncSession, job_id: str, account_id: str) -> VideoJob | None:
    result = await session.execute(
        select(VideoJob).where(VideoJob.id == job_id, VideoJob.account_id == account_id)
    )
    return result.scalar_one_or_none()


async def list_for_account(
    session: AsyncSession, account_id: str, *, limit: int, after: VideoJob | None, ascending: bool
) -> list[VideoJob]:
    query = select(VideoJob).where(VideoJob.account_id == account_id)
    order = (
        (VideoJob.created_at.asc(), VideoJob.id.asc())
        if ascending
        else (
            VideoJob.created_at.desc(),
            VideoJob.id.desc(),
        )
    )
    if after is not None:
        if ascending:
            query = query.where(
                or_(
                    VideoJob.created_at > after.created_at,
                    (VideoJob.created_at == after.created_at) & (VideoJob.id > after.id),
                )
            )
        else:
            query = query.where(
                or_(
                    VideoJob.created_at < after.created_at,
                    (VideoJob.created_at == after.created_at) & (VideoJob.id < after.id),
                )
            )
    result = await session.execute(query.order_by(*order).limit(limit))
    return list(result.scalars())


async def claim_due(
    session: AsyncSession, owner: str, now: float, lease_until: float, limit: int
) -> list[VideoJob]:
    """Take up to `limit` jobs due for a poll whose lease is free or expired.

    PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent pollers take disjoint jobs without
    waiting. SQLite: the transaction holds the single write lock (BEGIN IMMEDIATE), so the
    select-then-update is atomic across processes as it stands."""
    due = await session.execute(
        select(VideoJob.id)
        .where(
            VideoJob.status.in_(POLLED_STATES),
            VideoJob.next_poll_at <= now,
            or_(VideoJob.lease_expires_at.is_(None), VideoJob.lease_expires_at < now),
        )
        .order_by(VideoJob.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(due.scalars())
    if not ids:
        return []
    await session.execute(
        update(VideoJob)
        .where(VideoJob.id.in_(ids))
        .values(lease_owner=owner, lease_expires_at=lease_until)
    )
    result = await session.execute(select(VideoJob).where(VideoJob.id.in_(ids)))
    return list(result.scalars())


async def update_if(
    session: AsyncSession,
    job_id: str,
    *,
    owner: str | None = None,
    states: Sequence[str] = ACTIVE_JOB_STATES,
    lease_expired_before: float | None = None,
    **values: Any,
) -> bool:
    """Update a job only while it is in one of `states`, and leased by `owner` or with a lease
    that expired before `lease_expired_before`, when those are given."""
    conditions = [VideoJob.id == job_id, VideoJob.status.in_(states)]
    if owner is not None:
        conditions.append(VideoJob.lease_owner == owner)
    if lease_expired_before is not None:
        conditions.append(VideoJob.lease_expires_at < lease_expired_before)
    # On the Core connection: an ORM-enabled UPDATE would also try to sync loaded objects.
    connection = await session.connection()
    result = await connection.execute(update(VideoJob).where(*conditions).values(**values))
    return bool(result.rowcount)


async def stale_submissions(session: AsyncSession, now: float, limit: int = 200) -> list[VideoJob]:
    """Jobs whose submitting process died before it learned the upstream task id."""
    result = await session.execute(
        select(VideoJob)
        .where(VideoJob.status == "submitting", VideoJob.lease_expires_at < now)
        .limit(limit)
    )
    return list(result.scalars())


async def delete_job(session: AsyncSession, job_id: str) -> None:
    """The job's row only: its outputs are the storage domain's (`mirror.service`)."""
    await session.execute(delete(VideoJob).where(VideoJob.id == job_id))
