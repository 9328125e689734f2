"""The operator's actions, each audited. Never commits: the caller's transaction holds the
change and its audit row together, so there is never one without the other.

A disabled account is refused by every process the next time it looks the key up (at once
for a key it has not seen in the last seconds; within the key cache's 2 s otherwise, and at
once in the process that disabled it, which forgets its cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..accounts.deletion import UserDeleted
from ..accounts.deletion import delete_user as delete_user_rows
from ..audit import Actor, record
from ..credits import service as credits
from ..errors import GatewayError, NotFound
from ..identity import repository as users

__all__ = [
    "REASON_MAX",
    "adjust_credits",
    "delete_user",
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


async def delete_user(
    session: AsyncSession, actor: Actor, user_id: str, *, now: float
) -> UserDeleted | None:
    """The deletion service, for an operator (an account reported as a child's, a request by
    mail); None when there is no such user. The row names the person by id only."""
    deleted = await delete_user_rows(session, user_id, now=now)
    if deleted is None:
        return None
    await record(
        session,
        actor,
        "user.delete",
        now=now,
        target_user_id=user_id,
        account_id=deleted.account_ids[0] if deleted.account_ids else None,
        detail={
            "accounts": len(deleted.account_ids),
            "keys_revoked": deleted.keys_revoked,
            "sessions_ended": deleted.sessions_ended,
        },
    )
    return deleted
