"""The rest of an account's deletion, once `deletion.delete_user` has closed it (`deleted_at`
set, keys revoked: nothing more is held for it, in any process):

0. its Checkout Sessions still open are expired at Stripe (best effort), so none is paid
   once the top-ups are gone (nothing would credit it or record it), and its saved card is
   taken off its Stripe customer, so it can no longer be charged (Stripe out of reach: the
   billing profile and the account row wait for the next pass, which asks again, for
   `saved_card.DETACH_DAYS` at most);
1. its video jobs go through the videos' own delete path: a running one is cancelled upstream
   and its hold released, exactly once;
2. its outputs (rows now, objects queued with them and deleted at once), usage rows and
   idempotency records are deleted; its payment records (with their refunds and disputes) are
   detached and kept; its billing profile (Stripe customer, saved card) and top-ups go, a
   tombstone (ids only) of each top-up that may still be paid staying 30 days, so a payment
   already on its way is refunded when it lands (`billing.after_deletion`);
3. once no request of it is in flight (no credit held), its ledger, holds, keys and the account
   row itself (any audit row naming it since is detached). An image request still running when
   the person left finishes as it would have (its rows are written against the closed account,
   which still exists), and the next pass deletes what it wrote.

Run right after the deletion commits, then by the sweeper for every account left half-done (a
request in flight, a process that died): each step is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..api_keys import repository as keys
from ..audit.repository import detach as detach_audit
from ..billing import repository as payments
from ..billing.checkout import expire_open_checkouts
from ..billing.saved_card import close_stripe_customer
from ..credits import repository as credits
from ..idempotency import repository as idempotency
from ..jobs import repository as jobs
from ..jobs.service import delete_all as delete_all_videos
from ..mirror.service import delete_queued, forget_account_outputs
from ..runtime import Runtime
from ..usage import repository as usage
from . import repository

__all__ = ["AccountPurged", "purge_account", "purge_deleted_accounts"]

log = logging.getLogger("reapi_server.accounts")


@dataclass(frozen=True, slots=True)
class AccountPurged:
    account_id: str
    video_jobs: int
    #: Storage objects (or task prefixes) queued and deleted.
    objects: int
    usage_rows: int
    #: False while a request of the account is still in flight: a later pass finishes.
    removed: bool


async def purge_account(rt: Runtime, account_id: str) -> AccountPurged:
    """Delete what is left of a closed account (see the module's steps)."""
    await expire_open_checkouts(rt.billing, account_id)
    async with rt.db.read() as session:
        account = await repository.get(session, account_id)
    closed_at = account.deleted_at if account is not None else None
    # Before its profile row goes; waiting for Stripe `saved_card.DETACH_DAYS` at most.
    stripe_done = await close_stripe_customer(rt.billing, account_id, closed_at=closed_at)
    video_jobs = await delete_all_videos(rt, account_id)
    now = rt.now()
    async with rt.db.write() as session:
        # The account first, as a request settling now locks it before its hold (`lock_order`):
        # this waits for such a request to commit, then sees its hold closed.
        await rt.db.lock_accounts(session, account_id)
        in_flight = await credits.holds_in_flight(session, account_id)
        targets = await forget_account_outputs(session, account_id, now)
        usage_rows = await usage.delete_for_account(session, account_id)
        await idempotency.delete_for_account(session, account_id)
        await payments.detach_account(session, account_id, now=now)
        removed = False
        if stripe_done:  # else the profile names a card still on the customer: kept to retry
            await payments.forget_account(session, account_id, now=now)
        if not in_flight and stripe_done:
            # Nothing can be held any more (the account is closed), so nothing settles after.
            await jobs.delete_for_account(session, account_id)
            await credits.delete_for_account(session, account_id)
            await keys.delete_for_account(session, account_id)
            # An operator's action on the closed account since its deletion (none is offered:
            # its pages are gone) would name it: detached as the others were.
            await detach_audit(session, account_ids=[account_id])
            removed = await repository.delete_account(session, account_id)
    await delete_queued(rt, targets)
    return AccountPurged(account_id, video_jobs, len(targets), usage_rows, removed)


async def purge_deleted_accounts(rt: Runtime, *, batch: int = 50) -> int:
    """One pass over the closed accounts still there; how many were removed."""
    async with rt.db.read() as session:
        account_ids = await repository.deleted_account_ids(session, batch)
    removed = 0
    for account_id in account_ids:
        try:
            purged = await purge_account(rt, account_id)
        except Exception as exc:  # one account's trouble must not stop the others
            log.error("deleted account not purged", extra={"code": type(exc).__name__})
            continue
        removed += purged.removed
    if account_ids:
        rt.db.personal_data_deleted()
    return removed
