"""All SQL about usage rows."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import UsageRecord

__all__ = ["finish", "insert", "list_for_account"]

# Built once with bound parameters: these run on every request (hot path).
_INSERT = sa_insert(UsageRecord)
_FINISH = (
    update(UsageRecord)
    .where(UsageRecord.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        credit_cost=bindparam("b_cost"),
        error_code=bindparam("b_error"),
        provider=func.coalesce(bindparam("b_provider"), UsageRecord.provider),
        attempts=func.coalesce(bindparam("b_attempts"), UsageRecord.attempts),
        duration_ms=func.coalesce(bindparam("b_duration"), UsageRecord.duration_ms),
    )
)


async def insert(session: AsyncSession, record: UsageRecord) -> None:
    # A Core INSERT on the session's connection: this runs on every request (hot path).
    # Unset attributes are left out, so that column defaults apply.
    values = {
        c.key: getattr(record, c.key)
        for c in UsageRecord.__table__.columns
        if getattr(record, c.key) is not None
    }
    connection = await session.connection()
    await connection.execute(_INSERT, values)


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
    """Close a request's row. `provider`, `attempts`, `duration_ms`: None keeps what is there."""
    connection = await session.connection()
    await connection.execute(
        _FINISH,
        {
            "b_id": request_id,
            "b_status": status,
            "b_cost": credit_cost,
            "b_error": error_code,
            "b_provider": provider,
            "b_attempts": attempts,
            "b_duration": duration_ms,
        },
    )


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
