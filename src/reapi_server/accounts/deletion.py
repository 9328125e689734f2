"""Deleting a person: `delete_user`, for the operator's `reapi-server users delete` (an account
reported as a child's, a deletion request) and, later, the Settings page.

This is the first part of the full deletion: what signs the person in and what lets their keys
spend. The account row (the wallet) stays, ownerless, with its money history; the full deletion
(cancel running jobs, queue outputs for deletion, delete usage rows, detach payments kept for
7 years, a confirmation mail) adds its steps to `delete_user`, in this same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import repository as keys
from ..email.outbox import drop_for_address
from ..identity import repository as users
from ..webhooks.outbox import drop_for_account
from . import repository

__all__ = ["UserDeleted", "delete_user"]


@dataclass(frozen=True, slots=True)
class UserDeleted:
    user_id: str
    #: The accounts the user owned (kept, with their money history).
    account_ids: tuple[str, ...]
    keys_revoked: int
    sessions_ended: int


async def delete_user(session: AsyncSession, user_id: str, *, now: float) -> UserDeleted | None:
    """Delete the user in the caller's transaction; None when there is no such user.

    Every key of every account the user owns is revoked (running servers refuse them within
    seconds), every session ends, and the user's rows go: sign-in, tokens, consents,
    memberships, mail still queued for their address, and their webhooks (deliveries, and the
    keys' default URLs)."""
    user = await users.get_user(session, user_id)
    if user is None:
        return None
    account_ids = tuple(await repository.owned_account_ids(session, user_id))
    revoked = 0
    for account_id in account_ids:
        revoked += await keys.revoke_all(session, account_id, now)
        await drop_for_account(session, account_id)
    ended = await users.delete_sessions(session, user_id=user_id)
    await drop_for_address(session, user.email)
    await repository.delete_memberships(session, user_id)
    await users.delete_user(session, user_id)
    return UserDeleted(user_id, account_ids, revoked, ended)
