"""Auto top-up turns itself off, and tells the owner why; only the owner's own form turns it
on again (`auto_top_up.configure`).

Two kinds of cause: the bank refused an automatic charge (`authentication_required`,
`card_declined`, ...), or money of the account went back (`refunded`, `disputed`): charging
the saved card again, on its own, right after a refund or a chargeback is what the person
least expects, and what makes the next dispute.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository
from .applying import Applying

__all__ = ["pause_auto_top_up", "pause_for_money_back"]


async def pause_auto_top_up(
    session: AsyncSession, account_id: str, code: str, ctx: Applying
) -> bool:
    """Turn auto top-up off for `code` (kept as `auto_paused_reason`). False: it was off."""
    profile = await repository.profile(session, account_id)
    if profile is None or not profile.auto_enabled:
        return False
    profile.auto_enabled = False
    profile.auto_paused_reason, profile.auto_paused_at = code[:64], ctx.now
    profile.updated_at = ctx.now
    return True


async def pause_for_money_back(
    session: AsyncSession, account_id: str, code: str, ctx: Applying
) -> None:
    """A refund or a dispute was applied to the account: auto top-up off, the owner told."""
    if await pause_auto_top_up(session, account_id, code, ctx):
        await ctx.notify_owner(
            session,
            account_id,
            lambda mail, to: mail.auto_top_up_paused(to, when=ctx.now, code=code),
        )
