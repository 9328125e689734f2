"""All SQL about promotion codes and their redemptions."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import PromoCode, PromoRedemption
from ..upserts import conflict_insert

__all__ = [
    "add_code",
    "all_codes",
    "by_code",
    "claim_redemption",
    "get",
    "redemptions_of",
    "set_disabled",
    "take_use",
]


def _changed(result: object) -> int:
    return int(result.rowcount)  # type: ignore[attr-defined]


async def add_code(session: AsyncSession, code: PromoCode) -> bool:
    """Insert `code`; False (nothing written) when its text is taken already."""
    insert = conflict_insert(session)
    statement = insert(PromoCode).values(
        id=code.id,
        code=code.code,
        credits=code.credits,
        max_uses=code.max_uses,
        redeemed=0,
        expires_at=code.expires_at,
        disabled_at=None,
        note=code.note,
        created_at=code.created_at,
        created_by=code.created_by,
    )
    result = await session.execute(statement.on_conflict_do_nothing())
    return _changed(result) == 1


async def get(session: AsyncSession, code_id: str) -> PromoCode | None:
    result = await session.execute(
        select(PromoCode).where(PromoCode.id == code_id).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def by_code(session: AsyncSession, code: str) -> PromoCode | None:
    result = await session.execute(
        select(PromoCode).where(PromoCode.code == code).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def all_codes(session: AsyncSession, *, limit: int) -> list[PromoCode]:
    """The newest first."""
    result = await session.execute(
        select(PromoCode).order_by(PromoCode.created_at.desc(), PromoCode.id).limit(limit)
    )
    return list(result.scalars())


async def set_disabled(session: AsyncSession, code_id: str, now: float) -> bool:
    """False when it was disabled already (or there is no such code)."""
    result = await session.execute(
        update(PromoCode)
        .where(PromoCode.id == code_id, PromoCode.disabled_at.is_(None))
        .values(disabled_at=now)
    )
    return _changed(result) == 1


async def claim_redemption(session: AsyncSession, redemption: PromoRedemption) -> bool:
    """Insert the redemption; False (nothing written) when the account has one of this code
    already. A concurrent insert for the same pair waits for the other's transaction on the
    unique index (PostgreSQL) or for the write lock (SQLite), then finds it."""
    insert = conflict_insert(session)
    statement = insert(PromoRedemption).values(
        id=redemption.id,
        code_id=redemption.code_id,
        account_id=redemption.account_id,
        user_id=redemption.user_id,
        credits=redemption.credits,
        created_at=redemption.created_at,
    )
    result = await session.execute(statement.on_conflict_do_nothing())
    return _changed(result) == 1


async def take_use(session: AsyncSession, code_id: str, now: float) -> bool:
    """Count one more use of the code if it may still be used: not withdrawn, not expired, a
    use left. One conditional UPDATE: concurrent redemptions queue on the code's row and each
    re-checks the condition on the row the last one left (PostgreSQL re-reads it after the
    wait), so never more than `max_uses` succeed."""
    result = await session.execute(
        update(PromoCode)
        .where(
            PromoCode.id == code_id,
            PromoCode.disabled_at.is_(None),
            or_(PromoCode.expires_at.is_(None), PromoCode.expires_at > now),
            or_(PromoCode.max_uses.is_(None), PromoCode.redeemed < PromoCode.max_uses),
        )
        .values(redeemed=PromoCode.redeemed + 1)
    )
    return _changed(result) == 1


async def redemptions_of(
    session: AsyncSession, account_id: str, *, limit: int | None = 100
) -> list[tuple[PromoRedemption, str]]:
    """(redemption, the code's text) of an account, the newest first (`limit` None: all)."""
    query = (
        select(PromoRedemption, PromoCode.code)
        .join(PromoCode, PromoCode.id == PromoRedemption.code_id)
        .where(PromoRedemption.account_id == account_id)
        .order_by(PromoRedemption.created_at.desc(), PromoRedemption.id)
    )
    if limit is not None:
        query = query.limit(limit)
    result = await session.execute(query)
    return [(row[0], str(row[1])) for row in result.all()]


async def count_codes(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(PromoCode))).scalar_one())
