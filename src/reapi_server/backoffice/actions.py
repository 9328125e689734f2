"""The operator's actions, each audited. Never commits: the caller's transaction holds the
change and its audit row together, so there is never one without the other. Deleting a person
is not here: it is the person's own deletion (`accounts.personal_data.PersonalData.delete`,
given the operator as its actor), which commits and then purges what the accounts held.

A disabled account is refused by every process the next time it looks the key up (at once
for a key it has not seen in the last seconds; within the key cache's 2 s otherwise, and at
once in the process that disabled it, which forgets its cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..audit import Actor, record
from ..credits import service as credits
from ..errors import GatewayError, NotFound
from ..identity import repository as users

__all__ = [
    "REASON_MAX",
    "adjust_credits",
    "disable_account",
    "enable_account",
    "promote_user",
]

#: The longest reason an operator may give for a credit adjustment.
REASON_MAX = 200


def _reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise GatewayError("say why: the reason is kept with the adjustment", param="reason")
    if len(reason) > REASON_MAX or not reason.isprintable():
        raise GatewayError(
            f"the reason must be one line of at most {REASON_MAX} characters", param="reason"
        )
    return reason


async def _require_account(session: AsyncSession, account_id: str) -> None:
    if await accounts.get(session, account_id) is None:
        raise NotFound("there is no account with this id", param="account")


async def adjust_credits(
    session: AsyncSession, actor: Actor, account_id: str, amount: int, reason: str, *, now: float
) -> None:
    """Add credit to the balance (or take it away, `amount` < 0), with the reason why."""
    reason = _reason(reason)
    await _require_account(session, account_id)
    await credits.adjust(session, account_id, amount, now)
    await record(
        session,
        actor,
        "credits.adjust",
        now=now,
        account_id=account_id,
        detail={"amount": amount, "reason": reason},
    )


async def disable_account(
    session: AsyncSession, actor: Actor, account_id: str, *, now: float
) -> bool:
    """False (and nothing written) when it already was disabled."""
    await _require_account(session, account_id)
    if not await accounts.set_disabled(session, account_id, now):
        return False
    await record(session, actor, "account.disable", now=now, account_id=account_id)
    return True


async def enable_account(
    session: AsyncSession, actor: Actor, account_id: str, *, now: float
) -> bool:
    """False (and nothing written) when it was not disabled."""
    await _require_account(session, account_id)
    if not await accounts.set_disabled(session, account_id, None):
        return False
    await record(session, actor, "account.enable", now=now, account_id=account_id)
    return True


async def promote_user(session: AsyncSession, actor: Actor, user_id: str, *, now: float) -> bool:
    """Make the person an admin; False when they already were. Their sessions end: a session
    started before gets no new powers (whoever may have planted it), they sign in again."""
    if await users.get_user(session, user_id) is None:
        raise NotFound("there is no user with this id", param="user")
    if not await users.set_role(session, user_id, "admin"):
        return False
    ended = await users.delete_sessions(session, user_id=user_id)
    await record(
        session,
        actor,
        "user.promote",
        now=now,
        target_user_id=user_id,
        detail={"sessions_ended": ended},
    )
    return True
