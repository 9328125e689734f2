"""All SQL about the audit log: rows are written once and never changed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import AuditEntry
from .actor import Actor

__all__ = ["about", "recent", "record"]

#: What a row's detail may hold: scalars only (amounts, counts, a short reason).
Detail = Mapping[str, str | int | float | bool | None]


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    now: float,
    account_id: str | None = None,
    target_user_id: str | None = None,
    detail: Detail | None = None,
) -> None:
    session.add(
        AuditEntry(
            created_at=now,
            actor_user_id=actor.user_id,
            via=actor.via,
            action=action,
            account_id=account_id,
            target_user_id=target_user_id,
            detail=json.dumps(dict(detail or {}), sort_keys=True),
        )
    )
    await session.flush()


async def recent(
    session: AsyncSession, *, limit: int, before_id: int | None = None
) -> list[AuditEntry]:
    """The latest rows first; `before_id` pages back."""
    query = select(AuditEntry)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    result = await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))
    return list(result.scalars())


async def about(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    account_ids: Sequence[str] = (),
    limit: int | None = None,
) -> list[AuditEntry]:
    """Rows about a person or any of these accounts, the latest first."""
    conditions = []
    if user_id is not None:
        conditions.append(AuditEntry.target_user_id == user_id)
    if account_ids:
        conditions.append(AuditEntry.account_id.in_(account_ids))
    if not conditions:
        return []
    query = select(AuditEntry).where(or_(*conditions)).order_by(AuditEntry.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())
