"""The retention of per-request credit rows. Every request writes a credit hold (its request id,
key, amount, times) and two ledger rows (`reserve`, then `settle` or `release`): a record of
when a key spent what, kept no longer than the usage rows (`retention_days`).

- Closed holds created before the cutoff are deleted (held ones stay: a request still runs).
  Hold ids start with their time (`ids.ordered_id`), so the old ones are a range at the start
  of the primary key and no index is added to the table every request writes. Holds made before
  ordered ids have random ids: those above the ids of the next day are a range at the end; the
  few in between fall below the cutoff's ids within `retention_days` and go then.
- Ledger rows of the per-request kinds (`FOLDED_KINDS`) before the cutoff are replaced, in the
  same transaction, by `carried` rows with their sums: `balance`, `reserved` and `debt` stay
  the sums of the ledger, and each row within `MAX_CREDITS` (a sum past it is split over
  several rows). Payment, refund, dispute, grant, promotion and adjustment rows are kept (the
  payment records' own retention). Ledger ids grow with time, so the old rows are the start of
  the primary key: read in id order, in batches, until the first young row. A carried row takes
  the id and time of the newest row it replaces, so it stays in that old part and the next run
  folds it again: an account keeps one carried row, not one per run.

Each run reads the kept part again (payment, grant and promotion rows, a carried row per
account), outside any write transaction: a batch takes the write lock only when it has rows to
fold. Several processes may run this at once: a batch folds what its own DELETE returned, so
rows another process folded first are not counted twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from ..models import MAX_CREDITS, CreditHold, LedgerEntry

__all__ = [
    "CARRIED",
    "FOLDED_KINDS",
    "LedgerFold",
    "closed_holds",
    "delete_closed_holds",
    "fold",
    "ledger_after",
    "next_to_fold",
]

#: The kind of a row that carries the sums of per-request rows past retention.
CARRIED = "carried"
#: The ledger kinds a request writes (and the rows that carry them): folded past retention.
FOLDED_KINDS = ("reserve", "settle", "release", CARRIED)

_DAY_MS = 86_400_000


def _hold_id_at(ms: int) -> str:
    """The smallest ordered hold id of that millisecond (`ids.ordered_id`'s format)."""
    return f"hold_{ms:011x}"


def closed_holds(cutoff: float, limit: int) -> list[Select[Any]]:
    """The ids of up to `limit` closed holds created before `cutoff`, in each range of the
    primary key where they can be."""
    # Ordered ids come from the wall clock (`time`), and none is made a day ahead of it.
    ranges = (
        CreditHold.id < _hold_id_at(int(cutoff * 1000)),
        CreditHold.id >= _hold_id_at(int(time.time() * 1000) + _DAY_MS),
    )
    return [
        select(CreditHold.id)
        .where(in_range, CreditHold.status != "held", CreditHold.created_at < cutoff)
        .limit(limit)
        for in_range in ranges
    ]


def ledger_after(after: int, limit: int) -> Select[int, str, str, float]:
    """Up to `limit` ledger rows after id `after`, in id order."""
    return (
        select(LedgerEntry.id, LedgerEntry.kind, LedgerEntry.account_id, LedgerEntry.created_at)
        .where(LedgerEntry.id > after)
        .order_by(LedgerEntry.id)
        .limit(limit)
    )


async def delete_closed_holds(session: AsyncSession, cutoff: float, limit: int) -> int:
    """Delete up to `limit` settled or released holds created before `cutoff`."""
    connection = await session.connection()
    deleted = 0
    for batch in closed_holds(cutoff, limit):
        batch = batch.limit(limit - deleted)
        result = await connection.execute(
            delete(CreditHold).where(CreditHold.id.in_(batch.scalar_subquery()))
        )
        deleted += int(result.rowcount)
        if deleted >= limit:
            break
    return deleted


@dataclass(slots=True)
class LedgerFold:
    """One run's progress through the ledger."""

    #: The last id read: the next batch starts after it.
    after: int = 0
    done: bool = False
    #: The carried rows this run wrote, by account: a later batch folds them again, so an
    #: account ends the run with one.
    carried: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class _Sums:
    ids: list[int] = field(default_factory=list)
    amount: int = 0
    reserved: int = 0
    debt: int = 0
    #: The time of the newest row folded (the carried row's).
    newest: tuple[int, float] = (0, 0.0)


async def next_to_fold(
    session: AsyncSession, cutoff: float, limit: int, run: LedgerFold
) -> list[int]:
    """Read up to `limit` ledger rows after `run.after`: the ids of those of `FOLDED_KINDS`
    created before `cutoff` (up to the first younger row), and of the carried rows this run
    wrote for their accounts. A read: most runs find nothing to fold, and take no write lock."""
    connection = await session.connection()
    rows = (await connection.execute(ledger_after(run.after, limit))).all()
    old = []
    for row in rows:
        if row.created_at >= cutoff:  # the rest are as young or younger
            run.done = True
            break
        old.append(row)
    run.done = run.done or len(rows) < limit
    if not old:
        return []
    run.after = old[-1].id
    folded = [row for row in old if row.kind in FOLDED_KINDS]
    ids = [row.id for row in folded]
    for account_id in {row.account_id for row in folded}:
        ids += run.carried.pop(account_id, [])
    return ids


async def fold(session: AsyncSession, ids: list[int], run: LedgerFold) -> int:
    """Replace the rows `ids` (those still there, of `FOLDED_KINDS`) by carried rows with
    their sums, per account; how many rows the ledger lost."""
    connection = await session.connection()
    deleted = await connection.execute(
        delete(LedgerEntry)
        .where(LedgerEntry.id.in_(ids), LedgerEntry.kind.in_(FOLDED_KINDS))
        .returning(
            LedgerEntry.id,
            LedgerEntry.account_id,
            LedgerEntry.amount,
            LedgerEntry.reserved_delta,
            LedgerEntry.debt_delta,
            LedgerEntry.created_at,
        )
    )
    sums: dict[str, _Sums] = {}
    count = 0
    for entry_id, account_id, amount, reserved, debt, created_at in deleted:
        count += 1
        account = sums.setdefault(account_id, _Sums())
        account.ids.append(entry_id)
        account.amount += amount
        account.reserved += reserved
        account.debt += debt
        account.newest = max(account.newest, (entry_id, created_at))
    carried = [new for account_id, s in sums.items() for new in _carried_rows(account_id, s)]
    if carried:
        await connection.execute(insert(LedgerEntry), carried)
    for new in carried:
        run.carried.setdefault(new["account_id"], []).append(new["id"])
    return count - len(carried)


def _carried_rows(account_id: str, sums: _Sums) -> list[dict[str, Any]]:
    """The rows that carry `sums`: none when they are all zero; otherwise as few as keep each
    within ±`MAX_CREDITS`. Never more than the rows folded (each was within it), whose ids
    they take, newest first."""
    totals = (sums.amount, sums.reserved, sums.debt)
    if not any(totals):
        return []
    pieces = max(1, *(-(-abs(total) // MAX_CREDITS) for total in totals))
    ids = sorted(sums.ids, reverse=True)[:pieces]
    split = [_split(total, pieces) for total in totals]
    return [
        {
            "id": ids[i],
            "account_id": account_id,
            "kind": CARRIED,
            "amount": split[0][i],
            "reserved_delta": split[1][i],
            "debt_delta": split[2][i],
            "hold_id": None,
            "source_id": None,
            "created_at": sums.newest[1],
        }
        for i in range(pieces)
    ]


def _split(total: int, pieces: int) -> list[int]:
    """`total` in `pieces` parts that differ by at most 1 (so each is within the bound when
    `|total| <= pieces * MAX_CREDITS`)."""
    share, rest = divmod(total, pieces)
    return [share + 1 if i < rest else share for i in range(pieces)]
