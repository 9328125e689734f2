"""All SQL about the audit log. A row is written once; it changes only when the person it is
about is deleted (`detach`), and goes after `audit_retention_days` (`delete_before`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import AuditEntry
from .actor import Actor

__all__ = ["FREE_TEXT", "about", "delete_before", "detach", "recent", "record"]

#: What a row's detail may hold: scalars only (amounts, counts, a short reason).
Detail = Mapping[str, str | int | float | bool | None]

#: Detail keys whose value an operator typed: it may say anything about the person, so it goes
#: with them (`detach`).
FREE_TEXT = ("reason",)
#: What a detached row's detail says instead of whom it was about.
DETACHED = {"about": "a deleted person"}


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


async def detach(
    session: AsyncSession, *, user_id: str | None = None, account_ids: Sequence[str] = ()
) -> int:
    """The person (or these accounts) was deleted: the rows about them keep what the operator
    did and when (and which admin: `actor_user_id`, the operator's own record), but lose the
    person's user and account ids and what an operator typed about them. How many rows."""
    entries = await about(session, user_id=user_id, account_ids=account_ids)
    for entry in entries:
        detail = {k: v for k, v in json.loads(entry.detail).items() if k not in FREE_TEXT}
        entry.detail = json.dumps({**detail, **DETACHED}, sort_keys=True)
        entry.target_user_id = None
        entry.account_id = None
    await session.flush()
    return len(entries)


async def delete_before(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Delete up to `limit` rows written before `cutoff` (`audit_retention_days`)."""
    batch = select(AuditEntry.id).where(AuditEntry.created_at < cutoff).limit(limit)
    connection = await session.connection()
    result = await connection.execute(
        delete(AuditEntry).where(AuditEntry.id.in_(batch.scalar_subquery()))
    )
    return int(result.rowcount)
