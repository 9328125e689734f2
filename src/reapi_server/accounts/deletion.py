"""Deleting a person: `delete_user`, for Settings → Data → "Delete account" and the operator's
`reapi-server users delete` (an account reported as a child's, a deletion request by mail).

One transaction, in this order (the accounts locked first, in id order: `lock_order`):
1. every account the person owns is closed: its keys revoked, `deleted_at` set — from the
   commit on, nothing is held for it in any process (the reserve checks it), so no new request
   runs, whatever a process's key cache still says;
2. the person goes: sessions (signed out everywhere at once), the sign-in throttle rows about
   them (and the accounts' billing limits' counts), every mail row to them (at any address they
   had, or asked to move to),
   memberships, then the user row with what hangs from it (one-time links, consents,
   two-factor backup codes, known devices, linked GitHub and Google identities and sign-ins
   under way, notice deliveries);
3. payment records are detached (kept 7 years, as the law asks, without the account) and the
   confirmation mail is queued to the address they had (after their mail was dropped, so it
   is the one message left for it);
4. the audit log's rows about the person or their accounts are detached (`audit.detach`):
   they keep what an operator did and when, and which admin, but lose the person's user and
   account ids and the reason an operator typed; when an operator deletes the person (the
   admin pages, `reapi-server users delete`), the audit row saying so, detached as well
   (counts only).
What hangs from the accounts (video jobs, outputs, usage, credit, keys, the account rows) goes
right after it commits, through `closing.purge_account`: cancelling a video calls its provider,
and deleting an object calls storage, neither of which may run inside a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import repository as keys
from ..api_keys import throttle as key_throttle
from ..audit import Actor, record
from ..audit.repository import DETACHED, detach
from ..billing import repository as payments
from ..billing import throttles as billing_throttles
from ..db import Database
from ..email.compose import MailComposer
from ..email.outbox import drop_for_person, enqueue, list_for_person
from ..identity import repository as users
from ..identity.throttle import Throttle
from ..webhooks.outbox import drop_for_account
from . import repository

__all__ = ["UserDeleted", "delete_user"]


@dataclass(frozen=True, slots=True)
class UserDeleted:
    user_id: str
    #: The accounts the user owned, now closed (their rows go in `closing.purge_account`).
    account_ids: tuple[str, ...]
    keys_revoked: int
    sessions_ended: int
    #: Payment records kept, detached from the accounts.
    payments_kept: int
    #: The outbox ids of every message to the person (dropped): a backend that keeps copies
    #: (the file backend) removes them once this commits.
    mail_ids: tuple[str, ...] = ()


async def delete_user(
    session: AsyncSession,
    user_id: str,
    *,
    db: Database,
    now: float,
    mail: MailComposer,
    throttle: Throttle,
    actor: Actor | None = None,
) -> UserDeleted | None:
    """Delete the user in the caller's transaction (on `db`); None when there is no such
    user. `actor`: the operator who asked (audited), None for the person themselves.
    Their webhooks go too (deliveries, and the keys' default URLs)."""
    user = await users.get_user(session, user_id)
    if user is None:
        return None
    email = user.email
    account_ids = tuple(await repository.owned_account_ids(session, user_id))
    await db.lock_accounts(session, *account_ids)  # first: lock_order
    revoked = 0
    for account_id in account_ids:
        revoked += await keys.revoke_all(session, account_id, now)
        await repository.mark_deleted(session, account_id, now)
        await drop_for_account(session, account_id)
        await users.clear_throttle(session, billing_throttles.account_keys(account_id))
        await users.clear_throttle(session, key_throttle.account_keys(account_id))
    ended = await users.delete_sessions(session, user_id=user_id)
    await users.clear_throttle(session, [c.key for c in throttle.counters_about(email, user_id)])
    mail_ids = tuple(m.id for m in await list_for_person(session, user_id, email))
    await drop_for_person(session, user_id, email)
    await repository.delete_memberships(session, user_id)
    await users.delete_user(session, user_id)  # with every row that hangs from it
    await detach(session, user_id=user_id, account_ids=account_ids)
    kept = 0
    for account_id in account_ids:
        kept += await payments.detach_account(session, account_id, now=now)
    await enqueue(session, mail.account_deleted(email, now), now)
    deleted = UserDeleted(user_id, account_ids, revoked, ended, kept, mail_ids)
    if actor is not None:
        await _audit(session, actor, deleted, now)
    return deleted


async def _audit(session: AsyncSession, actor: Actor, deleted: UserDeleted, now: float) -> None:
    await record(
        session,
        actor,
        "user.delete",
        now=now,
        # Whom it was about goes with them: the row says who deleted a person, and when.
        detail={
            "accounts": len(deleted.account_ids),
            "keys_revoked": deleted.keys_revoked,
            "sessions_ended": deleted.sessions_ended,
            "payments_kept": deleted.payments_kept,
            **DETACHED,
        },
    )
