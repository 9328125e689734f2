"""All SQL about usage rows."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Update,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.core import quick_init

from ..group_commit import Statement, Tx, as_tx
from ..models import UsageRecord
from .row import UsageRow

__all__ = [
    "Finish",
    "all_for_account",
    "delete_for_account",
    "finish",
    "finish_as",
    "finishing",
    "insert",
    "last_used_by_key",
    "list_for_account",
    "status_of",
]

_COLUMNS = tuple(c.key for c in UsageRecord.__table__.columns)
#: A row's values in the columns' order: one call in C, where a comprehension over the twelve
#: columns ran ~120 bytecodes a request.
_VALUES = operator.attrgetter(*_COLUMNS)
# Compiled once per dialect: these run on every request (hot path, usually in a group commit).
_INSERT = Statement(sa_insert(UsageRecord), column_keys=_COLUMNS)


def finishing(cost: ColumnElement[Any], prefix: str = "b_") -> Update:
    """The UPDATE that closes a request's row (`finish`), charging `cost`; its other values are
    the parameters `<prefix>id`, `status`, `error`, `provider`, `attempts`, `duration`
    (`Finish.params`). Also part of the hold's closing statement (`credits.repository.settle`)."""
    return (
        update(UsageRecord)
        .where(UsageRecord.id == bindparam(f"{prefix}id", type_=String))
        .values(
            status=bindparam(f"{prefix}status", type_=String),
            credit_cost=cost,
            error_code=bindparam(f"{prefix}error", type_=String),
            provider=func.coalesce(
                bindparam(f"{prefix}provider", type_=String), UsageRecord.provider
            ),
            attempts=func.coalesce(
                bindparam(f"{prefix}attempts", type_=Integer), UsageRecord.attempts
            ),
            duration_ms=func.coalesce(
                bindparam(f"{prefix}duration", type_=Integer), UsageRecord.duration_ms
            ),
        )
    )


_FINISH = Statement(finishing(bindparam("b_cost")))


@quick_init
@dataclass(frozen=True, slots=True)
class Finish:
    """How a request ended, for its row (`finish`): None keeps what is there."""

    request_id: str
    status: str
    error_code: str | None = None
    provider: str | None = None
    attempts: int | None = None
    duration_ms: int | None = None

    def params(self, prefix: str = "b_") -> dict[str, Any]:
        return {
            f"{prefix}id": self.request_id,
            f"{prefix}status": self.status,
            f"{prefix}error": self.error_code,
            f"{prefix}provider": self.provider,
            f"{prefix}attempts": self.attempts,
            f"{prefix}duration": self.duration_ms,
        }


async def insert(session: AsyncSession | Tx, record: UsageRow) -> None:
    """Every column is given (`usage.service.new_row` fills them all)."""
    await as_tx(session).execute(_INSERT, dict(zip(_COLUMNS, _VALUES(record), strict=True)))


async def finish(
    session: AsyncSession | Tx,
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
    done = Finish(request_id, status, error_code, provider, attempts, duration_ms)
    await finish_as(session, done, credit_cost)


async def finish_as(session: AsyncSession | Tx, done: Finish, credit_cost: int) -> None:
    """`finish`, as `done` says."""
    await as_tx(session).execute(_FINISH, {**done.params(), "b_cost": credit_cost})


async def status_of(session: AsyncSession, request_id: str) -> str | None:
    """A request's status, or None when it has no row."""
    result = await session.execute(select(UsageRecord.status).where(UsageRecord.id == request_id))
    return result.scalar_one_or_none()


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


async def all_for_account(session: AsyncSession, account_id: str) -> list[UsageRecord]:
    """Every usage row of the account, oldest first (its data export)."""
    result = await session.execute(
        select(UsageRecord)
        .where(UsageRecord.account_id == account_id)
        .order_by(UsageRecord.created_at, UsageRecord.id)
    )
    return list(result.scalars())


async def last_used_by_key(session: AsyncSession, account_id: str) -> dict[str, float]:
    """Key id → the time of its latest request still on record (usage rows are the only
    record of a key's use; they go after `retention_days`)."""
    result = await session.execute(
        select(UsageRecord.api_key_id, func.max(UsageRecord.created_at))
        .where(UsageRecord.account_id == account_id, UsageRecord.api_key_id.is_not(None))
        .group_by(UsageRecord.api_key_id)
    )
    return {str(key_id): float(at) for key_id, at in result.all()}


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    connection = await session.connection()
    result = await connection.execute(
        delete(UsageRecord).where(UsageRecord.account_id == account_id)
    )
    return int(result.rowcount)
