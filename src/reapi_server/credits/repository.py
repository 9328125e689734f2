"""All SQL about credit. Every change to an account's `balance` or `reserved` writes a ledger
row in the same transaction, so both always equal the sums of the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, bindparam, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..ids import new_id
from ..models import MAX_CREDITS, Account, CreditHold, LedgerEntry

__all__ = [
    "ClosedHold",
    "Standing",
    "balance_of",
    "delete_for_account",
    "grant",
    "holds_for_account",
    "holds_in_flight",
    "ledger_for_account",
    "ledger_sums",
    "release",
    "release_expired",
    "renew_holds",
    "reserve",
    "settle",
    "stale_holds",
    "standing_of",
]


@dataclass(frozen=True, slots=True)
class ClosedHold:
    account_id: str
    amount: int
    charged: int


# The statements every request runs, compiled once per dialect (`group_commit.Statement`) and run
# on the driver's connection by the group committer, or on a session's connection elsewhere.
_LEDGER = Statement(
    insert(LedgerEntry),
    column_keys=("account_id", "kind", "amount", "reserved_delta", "hold_id", "created_at"),
)
_HOLD = Statement(
    insert(CreditHold),
    column_keys=(
        "id",
        "account_id",
        "amount",
        "charged",
        "status",
        "purpose",
        "request_id",
        "expires_at",
        "created_at",
        "closed_at",
    ),
)
#: Conditional on the account staying within the bound, held credit included (a release moves
#: it back into the balance, and must always fit).
_GRANT = Statement(
    update(Account)
    .where(
        Account.id == bindparam("b_account"),
        Account.balance + Account.reserved <= MAX_CREDITS - bindparam("b_amount"),
    )
    .values(balance=Account.balance + bindparam("b_amount"))
)
#: The one conditional UPDATE that decides whether a request may run.
_RESERVE = Statement(
    update(Account)
    .where(
        Account.id == bindparam("b_account"),
        Account.balance >= bindparam("b_amount"),
        # Nothing is held for an account being deleted: refused here, in every process at once.
        Account.deleted_at.is_(None),
        # Nor for one in a payment dispute, or owing credit since one (`billing`).
        Account.on_hold.is_(None),
        Account.debt == 0,
    )
    .values(
        balance=Account.balance - bindparam("b_amount"),
        reserved=Account.reserved + bindparam("b_amount"),
    )
)


def _closing(*conditions: ColumnElement[bool]) -> Statement:
    """Closing is conditional on the hold still being held: every race but one loses here. The
    charge is capped at the held amount (and the caller never passes less than 0), so a
    provider's odd usage report can neither overcharge nor mint credit."""
    return Statement(
        update(CreditHold)
        .where(CreditHold.id == bindparam("b_hold"), CreditHold.status == "held", *conditions)
        .values(
            status=bindparam("b_status"),
            charged=case(
                (CreditHold.amount < bindparam("b_charge"), CreditHold.amount),
                else_=bindparam("b_charge"),
            ),
            closed_at=bindparam("b_now"),
        )
        .returning(CreditHold.account_id, CreditHold.amount, CreditHold.charged)
    )


_CLOSE = _closing()
#: The sweeper's release: also conditional on the expiry, which a running request renews.
_CLOSE_EXPIRED = _closing(CreditHold.expires_at < bindparam("b_now"))
_REFUND = Statement(
    update(Account)
    .where(Account.id == bindparam("b_account"))
    .values(
        balance=Account.balance + bindparam("b_refund"),
        reserved=Account.reserved - bindparam("b_amount"),
    )
)


async def _ledger(
    tx: Tx,
    account_id: str,
    kind: str,
    amount: int,
    reserved_delta: int,
    hold_id: str | None,
    now: float,
) -> None:
    await tx.execute(
        _LEDGER,
        {
            "account_id": account_id,
            "kind": kind,
            "amount": amount,
            "reserved_delta": reserved_delta,
            "hold_id": hold_id,
            "created_at": now,
        },
    )


async def grant(session: AsyncSession | Tx, account_id: str, amount: int, now: float) -> bool:
    """Add `amount` (1 to `MAX_CREDITS`) to the balance; False when the account would exceed
    `MAX_CREDITS` (or does not exist), and then nothing is written."""
    if not 0 < amount <= MAX_CREDITS:
        raise ValueError(f"a grant must be between 1 and {MAX_CREDITS}")
    tx = as_tx(session)
    if await tx.execute(_GRANT, {"b_account": account_id, "b_amount": amount}) != 1:
        return False
    await _ledger(tx, account_id, "grant", amount, 0, None, now)
    return True


async def reserve(
    session: AsyncSession | Tx,
    account_id: str,
    amount: int,
    *,
    purpose: str,
    request_id: str,
    expires_at: float | None,
    now: float,
) -> str | None:
    """Move `amount` from balance to reserved, or return None if the balance is short (or the
    account is closing, on hold or in debt: `standing_of` says which).

    One conditional UPDATE decides: concurrent reservations can never overdraw, on SQLite
    (writers queue) or PostgreSQL (the row lock re-checks the WHERE after waiting), and within a
    group commit (its ops run one after the other, each seeing the balance the last one left)."""
    if amount > MAX_CREDITS:  # no balance is that high (and the driver may not take the number)
        return None
    tx = as_tx(session)
    if await tx.execute(_RESERVE, {"b_account": account_id, "b_amount": amount}) != 1:
        return None
    hold_id = new_id("hold")
    await tx.execute(
        _HOLD,
        {
            "id": hold_id,
            "account_id": account_id,
            "amount": amount,
            "charged": 0,
            "status": "held",
            "purpose": purpose,
            "request_id": request_id,
            "expires_at": expires_at,
            "created_at": now,
            "closed_at": None,
        },
    )
    await _ledger(tx, account_id, "reserve", -amount, amount, hold_id, now)
    return hold_id


async def _close(
    session: AsyncSession | Tx,
    hold_id: str,
    *,
    status: str,
    charge: int | None,
    now: float,
    statement: Statement = _CLOSE,
) -> ClosedHold | None:
    tx = as_tx(session)
    row = await tx.first(
        statement,
        {"b_hold": hold_id, "b_status": status, "b_charge": max(charge or 0, 0), "b_now": now},
    )
    if row is None:
        return None
    account_id, amount, charged = str(row[0]), int(row[1]), int(row[2])
    refund = amount - charged
    await tx.execute(_REFUND, {"b_account": account_id, "b_refund": refund, "b_amount": amount})
    kind = "settle" if status == "settled" else "release"
    await _ledger(tx, account_id, kind, refund, -amount, hold_id, now)
    return ClosedHold(account_id, amount, charged)


async def settle(
    session: AsyncSession | Tx, hold_id: str, charge: int, now: float
) -> ClosedHold | None:
    """Charge up to the held amount; any rest returns to the balance. None: already closed."""
    return await _close(session, hold_id, status="settled", charge=charge, now=now)


async def release(session: AsyncSession | Tx, hold_id: str, now: float) -> ClosedHold | None:
    """Give the whole hold back. None: it was already settled or released."""
    return await _close(session, hold_id, status="released", charge=None, now=now)


async def release_expired(
    session: AsyncSession | Tx, hold_id: str, now: float
) -> ClosedHold | None:
    """The sweeper's release: only while the hold is held and its expiry still past. None: it
    was closed, or renewed by its running request since it was found expired."""
    return await _close(
        session, hold_id, status="released", charge=None, now=now, statement=_CLOSE_EXPIRED
    )


async def renew_holds(
    session: AsyncSession, hold_ids: Sequence[str], expires_at: float
) -> list[str]:
    """Push back the expiry of these holds, those still held: their requests are running. A
    hold another transaction has locked (it is being settled or released) is skipped, never
    waited for: this UPDATE locks no account first (`lock_order`). The ids renewed."""
    if not hold_ids:
        return []
    free = (
        select(CreditHold.id)
        .where(CreditHold.id.in_(hold_ids), CreditHold.status == "held")
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(CreditHold)
        .where(CreditHold.id.in_(free.scalar_subquery()))
        .values(expires_at=expires_at)
        .returning(CreditHold.id)
        .execution_options(synchronize_session=False)
    )
    return [str(hold_id) for hold_id in result.scalars()]


async def stale_holds(
    session: AsyncSession, now: float, limit: int = 200
) -> list[tuple[str, str, str]]:
    """(hold id, request id, account id) of image holds whose request must have died with its
    process (video holds have no expiry: their jobs are swept instead)."""
    result = await session.execute(
        select(CreditHold.id, CreditHold.request_id, CreditHold.account_id)
        .where(
            CreditHold.status == "held",
            CreditHold.expires_at.is_not(None),
            CreditHold.expires_at < now,
        )
        .limit(limit)
    )
    return [(str(hold), str(request), str(account)) for hold, request, account in result]


_STANDING = Statement(
    select(Account.deleted_at, Account.on_hold, Account.debt).where(
        Account.id == bindparam("b_account")
    )
)


@dataclass(frozen=True, slots=True)
class Standing:
    """What, besides its balance, may stand in the way of a hold on an account."""

    closed: bool
    #: `account_in_dispute` while a chargeback is open.
    on_hold: str | None
    debt: int


async def standing_of(session: AsyncSession | Tx, account_id: str) -> Standing:
    """Read in the transaction that refused a hold (an account that is gone counts as closed)."""
    row = await as_tx(session).first(_STANDING, {"b_account": account_id})
    if row is None:
        return Standing(closed=True, on_hold=None, debt=0)
    return Standing(closed=row[0] is not None, on_hold=row[1], debt=int(row[2]))


async def balance_of(session: AsyncSession, account_id: str) -> tuple[int, int]:
    result = await session.execute(
        select(Account.balance, Account.reserved).where(Account.id == account_id)
    )
    row = result.one_or_none()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def ledger_sums(session: AsyncSession, account_id: str) -> tuple[int, int]:
    """(sum of amount, sum of reserved_delta): must equal (balance, reserved)."""
    result = await session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.amount), 0),
            func.coalesce(func.sum(LedgerEntry.reserved_delta), 0),
        ).where(LedgerEntry.account_id == account_id)
    )
    amount, reserved = result.one()
    return int(amount), int(reserved)


async def ledger_for_account(session: AsyncSession, account_id: str) -> list[LedgerEntry]:
    result = await session.execute(
        select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)
    )
    return list(result.scalars())


async def holds_for_account(session: AsyncSession, account_id: str) -> list[CreditHold]:
    result = await session.execute(
        select(CreditHold)
        .where(CreditHold.account_id == account_id)
        .order_by(CreditHold.created_at, CreditHold.id)
    )
    return list(result.scalars())


async def holds_in_flight(session: AsyncSession, account_id: str) -> int:
    """The account's holds not settled or released yet: requests still running."""
    result = await session.execute(
        select(func.count())
        .select_from(CreditHold)
        .where(CreditHold.account_id == account_id, CreditHold.status == "held")
    )
    return int(result.scalar_one())


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    """The account's ledger and holds (its balance goes with the account row)."""
    connection = await session.connection()
    ledger = await connection.execute(
        delete(LedgerEntry).where(LedgerEntry.account_id == account_id)
    )
    holds = await connection.execute(delete(CreditHold).where(CreditHold.account_id == account_id))
    return int(ledger.rowcount) + int(holds.rowcount)
