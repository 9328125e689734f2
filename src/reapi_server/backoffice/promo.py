"""The operator's promotion code actions, each audited in the caller's transaction (as
`backoffice.actions`): create a code, withdraw it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import Actor, record
from ..errors import NotFound
from ..models import PromoCode
from ..promo import repository, service
from ..promo.service import CodeTerms

__all__ = ["create_code", "disable_code"]


async def create_code(
    session: AsyncSession, actor: Actor, terms: CodeTerms, *, now: float
) -> PromoCode:
    code = await service.create_code(session, terms, created_by=actor.user_id, now=now)
    await record(
        session,
        actor,
        "promo.create",
        now=now,
        detail={
            "code": code.code,
            "credits": code.credits,
            "max_uses": code.max_uses,
            "expires_at": code.expires_at,
        },
    )
    return code


async def disable_code(session: AsyncSession, actor: Actor, code: str, *, now: float) -> bool:
    """Withdraw the code (by its id, promo_..., or its text); False when it was already."""
    found = (
        await repository.get(session, code)
        if code.startswith("promo_")
        else await repository.by_code(session, code.strip().upper())
    )
    if found is None:
        raise NotFound("there is no promotion code like this", param="code")
    if not await service.disable_code(session, found.id, now):
        return False
    await record(session, actor, "promo.disable", now=now, detail={"code": found.code})
    return True
