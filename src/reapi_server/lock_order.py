"""One lock order for every write transaction that changes several rows (PostgreSQL).

Every row the gateway's write transactions change belongs to an account: its balance, holds,
ledger and usage rows, idempotency records, keys (with their count of unfinished videos) and
video jobs. The rule: a transaction that changes rows of more than one table locks the accounts
they belong to first, in id order, before any other row (`lock_accounts`). Two transactions that
touch one account's rows then queue on that account's row before either holds anything else,
and two that touch several accounts take them in the same order: no cycle of waits, so no
deadlock. A group commit locks the accounts of all its ops in one statement (each op names its
account: `Database.grouped`); the other write paths (the poller's settlement, failing a job,
deleting a video, the sweeper's releases) call `Database.lock_accounts` first.

The one row taken before accounts: a Stripe event's. Applying an event claims its row first
(its first statement, so that two deliveries of one event cannot both apply it), then locks the
accounts the change touches; noting an attempt that failed takes them in the same order.
Nothing else locks an event's row while it holds an account.

A group commit's marker row (`commit_markers`, its own) is written by the statement that locks
its accounts, after them; only its committer and the probe that reads a lost COMMIT's outcome
(holding nothing else) ever take that row.

What needs nothing: a transaction that locks a single row, and one that never waits
(`FOR UPDATE SKIP LOCKED`: the pollers' claims, the sweeper's bulk deletes, the renewal of
running requests' holds and idempotency records).

`FOR NO KEY UPDATE`, not `FOR UPDATE`: inserting a row that references the account takes `FOR
KEY SHARE` on it, which this lock does not block (nor does the UPDATE of a balance). SQLite has
one writer at a time: there is nothing to order.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ARRAY, String, any_, bindparam, select

from .group_commit import Statement, Tx
from .models import Account

__all__ = ["LOCKING", "lock_accounts"]

#: Locks the accounts named by the array parameter `b_ids`, in id order. The group committer
#: runs it as part of its first statement (`GroupCommitter`), the other write paths alone.
LOCKING = (
    select(Account.id)
    .where(Account.id == any_(bindparam("b_ids", type_=ARRAY(String))))
    .order_by(Account.id)
    .with_for_update(key_share=True)
)
_LOCK = Statement(LOCKING)


async def lock_accounts(tx: Tx, account_ids: Iterable[str]) -> None:
    """Lock these accounts' rows (PostgreSQL only), in id order, until the transaction ends."""
    ids = sorted(set(account_ids))
    if ids:
        await tx.all(_LOCK, {"b_ids": ids})
