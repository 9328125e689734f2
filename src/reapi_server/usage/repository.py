"""All SQL about usage rows."""

from __future__ import annotations

from sqlalchemy import insert as sa_insert
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import UsageRecord

__all__ = ["finish", "insert", "list_for_account"]


async def insert(session: AsyncSession, record: UsageRecord) -> None:
    # A Core INSERT rather than an ORM flush: this runs on every request (hot path).
    values = {c.key: getattr(record, c.key) for c in UsageRecord.__table__.columns}
    await session.execute(sa_insert(UsageRecord).values(**values))


async def finish(
    session: AsyncSession,
    request_id: str,
    *,
    status: str,
    credit_cost: int = 0,
    error_code: str | None = None,
    provider: str | None = None,
    attempts: int | None = None,
    duration_ms: int | None = None,
) -> None:
    values: dict[str, object] = {
        "status": status,
        "credit_cost": credit_cost,
        "error_code": error_code,
    }
    if provider is not None:
        values["provider"] = provider
    if attempts is not None:
        values["attempts"] = attempts
    if duration_ms is not None:
        values["duration_ms"] = duration_ms
    await session.execute(update(UsageRecord).where(UsageRecord.id == request_id).values(**values))


async def list_for_account(
    session: AsyncSession, account_id: str, *, limit: int, before: float | None = None
) -> list[UsageRecord]:
    query = select(UsageRecord).where(UsageRecord.account_id == account_id)
    if before is not None:
        query = query.where(UsageRecord.created_at < before)
    result = await session.execute(
        query.order_by(UsageRecord.created_at.desc(), UsageRecord.id.desc()).limit(limit)
    )
    return list(result.scalars())
