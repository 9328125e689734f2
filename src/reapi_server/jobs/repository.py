"""All SQL about video jobs. Changes made by the poller are conditional on its lease, so a worker
that lost a job (its lease expired and another took it) cannot overwrite the new owner's work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, or_, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..models import ACTIVE_JOB_STATES, ApiKey, VideoJob

__all__ = [
    "active_videos",
    "all_for_account",
    "claim_due",
    "delete_for_account",
    "delete_job",
    "get",
    "get_detached",
    "get_for_account",
    "hand_back",
    "insert",
    "list_for_account",
    "mark_submitted",
    "reread",
    "stale_submissions",
    "unfinished_among",
    "update_if",
]

POLLED_STATES = ("queued", "in_progress")


def _any_state(states: Sequence[str]) -> ColumnElement[bool]:
    # Plain ORs, not IN: an IN list compiles to an "expanding" parameter, which a statement
    # compiled once for the driver (group_commit.Statement) cannot carry.
    return or_(*(VideoJob.status == state for state in states))


_COLUMNS = tuple(c.key for c in VideoJob.__table__.columns)
_JOB_COLUMNS = tuple(getattr(VideoJob, key) for key in _COLUMNS)
_DEFAULTS = {
    c.key: c.default.arg
    for c in VideoJob.__table__.columns
    if c.default is not None and c.default.is_scalar
}
_INSERT = Statement(sa_insert(VideoJob), column_keys=_COLUMNS)
_GET = Statement(select(*_JOB_COLUMNS).where(VideoJob.id == bindparam("b_id")))
#: Locks the key's row (PostgreSQL; SQLite has one writer) and reads its unfinished jobs.
_ACTIVE_VIDEOS = Statement(
    select(ApiKey.active_videos).where(ApiKey.id == bindparam("b_key")).with_for_update()
)
_SUBMITTED: dict[tuple[str, ...], Statement] = {}


async def active_videos(session: AsyncSession | Tx, key_id: str) -> int:
    """The key's unfinished video jobs, its row locked until the transaction ends, so that
    creates by one key are checked against its limit one at a time."""
    row = await as_tx(session).first(_ACTIVE_VIDEOS, {"b_key": key_id})
    return int(row[0]) if row is not None else 0


async def get(session: AsyncSession, job_id: str) -> VideoJob | None:
    return await session.get(VideoJob, job_id)


async def reread(session: AsyncSession, job_id: str) -> VideoJob | None:
    """The job as it is now in this transaction (after Core UPDATEs the session did not see)."""
    return await session.get(VideoJob, job_id, populate_existing=True)


async def get_detached(tx: Tx, job_id: str) -> VideoJob | None:
    """The job as a detached object, read with one Core SELECT (no session needed)."""
    row = await tx.first(_GET, {"b_id": job_id})
    return None if row is None else VideoJob(**dict(zip(_COLUMNS, row, strict=True)))


async def insert(session: AsyncSession | Tx, job: VideoJob) -> None:
    """Every column is written; an attribute left unset takes its column's default."""
    values = {}
    for key in _COLUMNS:
        value = getattr(job, key)
        values[key] = _DEFAULTS.get(key) if value is None else value
    await as_tx(session).execute(_INSERT, values)


async def mark_submitted(
    tx: Tx,
    job_id: str,
    *,
    states: tuple[str, ...],
    provider: str,
    upstream_model: str,
    upstream_task_id: str,
    attempts: int,
    next_poll_at: float,
) -> bool:
    """The upstream accepted the task: the job is queued for the poller (if still in `states`)."""
    statement = _SUBMITTED.get(states)
    if statement is None:
        statement = _SUBMITTED[states] = Statement(
            update(VideoJob)
            .where(VideoJob.id == bindparam("b_id"), _any_state(states))
            .values(
                status="queued",
                provider=bindparam("b_provider"),
                upstream_model=bindparam("b_upstream_model"),
                upstream_task_id=bindparam("b_task"),
                attempts=bindparam("b_attempts"),
                lease_owner=None,
                lease_expires_at=None,
                next_poll_at=bindparam("b_next_poll"),
                poll_failures=0,
            )
        )
    changed = await tx.execute(
        statement,
        {
            "b_id": job_id,
            "b_provider": provider,
            "b_upstream_model": upstream_model,
            "b_task": upstream_task_id,
            "b_attempts": attempts,
            "b_next_poll": next_poll_at,
        },
    )
    return changed == 1


async def get_for_account(session: AsyncSession, job_id: str, account_id: str) -> VideoJob | None:
    result = await session.execute(
        select(VideoJob).where(VideoJob.id == job_id, VideoJob.account_id == account_id)
    )
    return result.scalar_one_or_none()


async def all_for_account(session: AsyncSession, account_id: str) -> list[VideoJob]:
    result = await session.execute(
        select(VideoJob)
        .where(VideoJob.account_id == account_id)
        .order_by(VideoJob.created_at, VideoJob.id)
    )
    return list(result.scalars())


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


async def hand_back(session: AsyncSession, owner: str, now: float) -> int:
    """Give up every lease `owner` holds (it is stopping): its jobs are due at once, for
    whichever poller comes next."""
    result = await session.execute(
        update(VideoJob)
        .where(VideoJob.lease_owner == owner, VideoJob.status.in_(POLLED_STATES))
        .values(lease_owner=None, lease_expires_at=None, next_poll_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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


async def unfinished_among(session: AsyncSession, job_ids: Sequence[str]) -> set[str]:
    """Which of these jobs exist and are not finished (by primary key: one cheap read)."""
    if not job_ids:
        return set()
    result = await session.execute(
        select(VideoJob.id).where(VideoJob.id.in_(job_ids), VideoJob.status.in_(ACTIVE_JOB_STATES))
    )
    return set(result.scalars())


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


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    """Rows only: the jobs were cancelled and their outputs queued by `jobs.service` first."""
    connection = await session.connection()
    result = await connection.execute(delete(VideoJob).where(VideoJob.account_id == account_id))
    return int(result.rowcount)
