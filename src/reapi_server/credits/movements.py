"""Credit bought, refunded and disputed: the billing domain's movements of a balance.

Each movement names what caused it (`source_id`: `pi_...:purchase`, `re_...`, `dp_...:taken`,
...). The ledger's unique index on it means the same money moves at most once, whichever path
tries (a redelivered webhook, the retry loop, two processes at once): the second finds the row
and moves nothing. The account is locked first (PostgreSQL; `lock_order`), so the balance and
debt read here are the ones the movement is computed from.

The balance never goes below 0 (its CHECK guards every path). What a chargeback takes beyond the
balance becomes `debt`; every credit added pays the debt first. Never commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, as_tx
from ..lock_order import lock_accounts
from ..models import MAX_CREDITS, Account, LedgerEntry

__all__ = [
    "REFUND_HOLD",
    "Moved",
    "Plan",
    "add",
    "already_moved",
    "clear_hold",
    "hold_for_refund",
    "ledger_debt",
    "lift_refund_hold",
    "lock_account",
    "put_on_hold",
    "state",
    "take_back",
]


@dataclass(frozen=True, slots=True)
class Moved:
    """What one movement did: to the balance (+ added, - taken) and to the debt."""

    balance: int
    debt: int


#: (balance, reserved, debt) before → the movement.
Plan = Callable[[int, int, int], Moved]

_MOVED = Statement(select(LedgerEntry.id).where(LedgerEntry.source_id == bindparam("b_source")))
_STATE = Statement(
    select(Account.balance, Account.reserved, Account.debt).where(
        Account.id == bindparam("b_account")
    )
)
_LEDGER = Statement(
    insert(LedgerEntry),
    column_keys=(
        "account_id",
        "kind",
        "amount",
        "reserved_delta",
        "debt_delta",
        "hold_id",
        "source_id",
        "created_at",
    ),
)
_APPLY = Statement(
    update(Account)
    .where(Account.id == bindparam("b_account"))
    .values(
        balance=Account.balance + bindparam("b_balance"),
        debt=Account.debt + bindparam("b_debt"),
    )
)


async def lock_account(session: AsyncSession, account_id: str) -> None:
    """Lock the account's row until the transaction ends (PostgreSQL; SQLite has one writer):
    the first lock of a transaction that changes its rows (`lock_order`)."""
    if session.get_bind().dialect.name == "postgresql":
        await lock_accounts(as_tx(session), [account_id])


async def state(session: AsyncSession, account_id: str) -> tuple[int, int, int] | None:
    """(balance, reserved, debt) now; lock the account first for it to stay so. None: no
    such account."""
    row = await as_tx(session).first(_STATE, {"b_account": account_id})
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


async def already_moved(session: AsyncSession, source_id: str) -> bool:
    return await as_tx(session).first(_MOVED, {"b_source": source_id}) is not None


async def _move(
    session: AsyncSession,
    account_id: str,
    *,
    kind: str,
    source_id: str,
    now: float,
    plan: Plan,
) -> Moved | None:
    tx = as_tx(session)
    await lock_account(session, account_id)
    if await tx.first(_MOVED, {"b_source": source_id}) is not None:
        return None
    state = await tx.first(_STATE, {"b_account": account_id})
    if state is None:
        return None
    balance, reserved, debt = (int(value) for value in state)
    moved = plan(balance, reserved, debt)
    await tx.execute(
        _LEDGER,
        {
            "account_id": account_id,
            "kind": kind,
            "amount": moved.balance,
            "reserved_delta": 0,
            "debt_delta": moved.debt,
            "hold_id": None,
            "source_id": source_id,
            "created_at": now,
        },
    )
    if moved.balance or moved.debt:
        params = {"b_account": account_id, "b_balance": moved.balance, "b_debt": moved.debt}
        await tx.execute(_APPLY, params)
    return moved


def _adding(credits: int) -> Plan:
    def plan(balance: int, reserved: int, debt: int) -> Moved:
        paid = min(debt, credits)
        # Within the bound (balance and held credit together): past it, the rest is not added
        # (a pack is far below it; only an account near 10^15 credits could get here).
        added = max(min(credits - paid, MAX_CREDITS - balance - reserved), 0)
        return Moved(balance=added, debt=-paid)

    return plan


def _taking(credits: int, into_debt: bool) -> Plan:
    def plan(balance: int, reserved: int, debt: int) -> Moved:
        taken = min(balance, credits)
        owed = credits - taken if into_debt else 0
        return Moved(balance=-taken, debt=min(owed, MAX_CREDITS - debt))

    return plan


async def add(
    session: AsyncSession, account_id: str, credits: int, *, kind: str, source_id: str, now: float
) -> Moved | None:
    """Add `credits`, paying the account's debt first. None: `source_id` moved already (or the
    account is gone), and nothing was written."""
    if not 0 < credits <= MAX_CREDITS:
        raise ValueError(f"credits to add must be between 1 and {MAX_CREDITS}")
    return await _move(
        session, account_id, kind=kind, source_id=source_id, now=now, plan=_adding(credits)
    )


async def take_back(
    session: AsyncSession,
    account_id: str,
    credits: int,
    *,
    kind: str,
    source_id: str,
    now: float,
    into_debt: bool,
) -> Moved | None:
    """Take `credits` from the balance. What the balance does not cover becomes debt when
    `into_debt`, else it is waived: a caller waiving makes sure it was spent, not merely held
    (`reserved` credits come back to the balance when their request is cancelled). None:
    `source_id` moved already (or the account is gone), and nothing was written."""
    if not 0 <= credits <= MAX_CREDITS:
        raise ValueError(f"credits to take back must be between 0 and {MAX_CREDITS}")
    plan = _taking(credits, into_debt)
    return await _move(session, account_id, kind=kind, source_id=source_id, now=now, plan=plan)


#: `on_hold` while a refund waits for the account's running requests to end: no new hold
#: starts, so the wait ends when the holds in place close (and they expire).
REFUND_HOLD = "refund_pending"


async def hold_for_refund(session: AsyncSession, account_id: str) -> None:
    """No new holds for the account until `lift_refund_hold` (unless it is on hold already: a
    dispute's hold refuses the same, and the refund holds again once that one lifts)."""
    await lock_account(session, account_id)
    await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.on_hold.is_(None))
        .values(on_hold=REFUND_HOLD)
        .execution_options(synchronize_session=False)
    )


async def lift_refund_hold(session: AsyncSession, account_id: str) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.on_hold == REFUND_HOLD)
        .values(on_hold=None)
        .execution_options(synchronize_session=False)
    )


async def put_on_hold(session: AsyncSession, account_id: str, reason: str) -> None:
    """From now on nothing is held for the account (in every process at once)."""
    await session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(on_hold=reason)
        .execution_options(synchronize_session=False)
    )


async def clear_hold(session: AsyncSession, account_id: str) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(on_hold=None)
        .execution_options(synchronize_session=False)
    )


async def ledger_debt(session: AsyncSession, account_id: str) -> int:
    """The sum of the ledger's debt_delta: must equal the account's `debt`."""
    result = await session.execute(
        select(func.coalesce(func.sum(LedgerEntry.debt_delta), 0)).where(
            LedgerEntry.account_id == account_id
        )
    )
    return int(result.scalar_one())
