"""All SQL about credit. Every change to an account's `balance` or `reserved` writes a ledger
row in the same transaction, so both always equal the sums of the ledger.

A hold made for a key also adds to the key's spend counter (`ApiKey.period_spend`), in the
same statement that decides whether the account has the credit: the key's limit, expiry and
revocation and the account's balance and disabled state are one decision. Closing the hold
gives the unspent rest back to the counter of the period the hold was made in, and to no other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.core import quick_init

from ..group_commit import Statement, Tx, as_tx
from ..ids import ordered_id
from ..mirror.outputs import MirroredFile
from ..mirror.repository import insert_outputs, output_arrays, outputs_inserting
from ..models import MAX_CREDITS, Account, ApiKey, CreditHold, LedgerEntry, UsageRecord
from ..pg_pipeline import one_row
from ..usage import repository as usage_rows
from ..usage.repository import Finish
from ..usage.row import UsageRow

__all__ = [
    "GRANT_KINDS",
    "ClosedHold",
    "KeySpend",
    "Outputs",
    "Refusal",
    "adjust",
    "balance_of",
    "delete_for_account",
    "grant",
    "holds_for_account",
    "holds_in_flight",
    "latest_ledger",
    "ledger_for_account",
    "ledger_sums",
    "release",
    "release_expired",
    "renew_holds",
    "reserve",
    "settle",
    "stale_holds",
    "why_refused",
]


@quick_init
@dataclass(frozen=True, slots=True)
class ClosedHold:
    account_id: str
    amount: int
    charged: int
    #: The account's balance once the hold was closed, as the closing statement left it.
    balance: int | None = None
    #: The key the hold counted against, and the key's spend in the hold's period once closed
    #: (None: no key, or its counter has moved on to a later period). With `balance`, what
    #: the low-balance alerts watch (`alerts.watch`) without a statement of their own.
    key_id: str | None = None
    key_spend: int | None = None


@dataclass(frozen=True, slots=True)
class Outputs:
    """A request's stored outputs, whose rows a settlement writes (`settle`)."""

    files: Sequence[MirroredFile]
    account_id: str


@quick_init
@dataclass(frozen=True, slots=True)
class KeySpend:
    """The key a hold counts against, and the start of its current period by the caller's
    clock (`api_keys.periods.period_start`)."""

    key_id: str
    period_start: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refused hold found, read in its own transaction (`why_refused`)."""

    balance: int
    account_disabled: bool
    #: The account is being deleted (`accounts.deletion`).
    account_closed: bool = False
    #: Why the account is on hold (`account_in_dispute`: a chargeback is open).
    on_hold: str | None = None
    #: Credits the account owes since a chargeback took more than was left.
    debt: int = 0
    #: The key is gone or revoked.
    key_unusable: bool = False
    key_expires_at: float | None = None
    spend_limit: int | None = None
    #: The key's spend in its current period (holds included).
    period_spend: int = 0
    spend_period: str = "never"


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
        "api_key_id",
        "period_start",
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
#: An operator's correction, either way: the balance stays at 0 or above, and the account within
#: the bound.
_ADJUST = Statement(
    update(Account)
    .where(
        Account.id == bindparam("b_account"),
        Account.balance + bindparam("b_amount") >= 0,
        Account.balance + Account.reserved + bindparam("b_amount") <= MAX_CREDITS,
    )
    .values(balance=Account.balance + bindparam("b_amount"))
)
_AMOUNT = bindparam("b_amount", type_=BigInteger)
_PERIOD = bindparam("b_period", type_=Float)
_NOW = bindparam("b_now", type_=Float)
#: The account can fund a hold: enough balance, not disabled, not being deleted, not on hold
#: (nothing is held for such an account: refused here, in every process at once).
_FUNDED: tuple[ColumnElement[bool], ...] = (
    Account.id == bindparam("b_account"),
    Account.balance >= _AMOUNT,
    Account.disabled_at.is_(None),
    Account.deleted_at.is_(None),
    # Nor for one in a payment dispute, or owing credit since one (`billing.disputes`).
    Account.on_hold.is_(None),
    Account.debt == 0,
)
#: The conditional UPDATE that decides whether a request without a key may run.
_DEBIT_CLAUSE = (
    update(Account)
    .where(*_FUNDED)
    .values(balance=Account.balance - _AMOUNT, reserved=Account.reserved + _AMOUNT)
)
_RESERVE = Statement(_DEBIT_CLAUSE)
#: The key's counter in the hold's period: zero when it belongs to an earlier one.
_IN_PERIOD = case((ApiKey.period_start < _PERIOD, 0), else_=ApiKey.period_spend)
#: The key may start a request costing `b_amount` (and its account can fund it).
_KEY_MAY_SPEND: tuple[ColumnElement[bool], ...] = (
    ApiKey.id == bindparam("b_key"),
    ApiKey.account_id == bindparam("b_account"),
    ApiKey.kind == "model",
    ApiKey.revoked_at.is_(None),
    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > _NOW),
    or_(ApiKey.spend_limit.is_(None), ApiKey.spend_limit >= _IN_PERIOD + _AMOUNT),
    exists().where(*_FUNDED),
)
#: Adds the hold to the key's counter (starting the period's counter when it is a new one),
#: on the condition above, which the row lock re-checks on PostgreSQL after waiting. The key's
#: last use comes with it (the row is written anyway; `api_keys.last_used` covers the rest).
_SPEND_CLAUSE = (
    update(ApiKey)
    .where(*_KEY_MAY_SPEND)
    .values(
        period_spend=_IN_PERIOD + _AMOUNT,
        period_start=case((ApiKey.period_start < _PERIOD, _PERIOD), else_=ApiKey.period_start),
        last_used_at=_NOW,
    )
    .returning(ApiKey.period_start)
)
#: SQLite: one statement after the other (one writer: nothing moves in between).
_SPEND = Statement(_SPEND_CLAUSE)
_DEBIT_AFTER_SPEND = _RESERVE


def _spend_and_debit() -> Statement:
    """PostgreSQL: the key's counter and the account's balance in one statement (one round
    trip): the debit runs only if the key's update did, and reads its result. Answers (the
    counter's period start or NULL, accounts debited)."""
    spend = _SPEND_CLAUSE.cte("spend")
    debit = (
        update(Account)
        .where(*_FUNDED, exists(select(spend.c.period_start)))
        .values(balance=Account.balance - _AMOUNT, reserved=Account.reserved + _AMOUNT)
        .returning(Account.id)
        .cte("debit")
    )
    return Statement(
        select(
            select(spend.c.period_start).scalar_subquery(),
            select(func.count()).select_from(debit).scalar_subquery(),
        )
    )


_SPEND_AND_DEBIT = _spend_and_debit()


def _recorded(debited: ColumnElement[Any], period: ColumnElement[Any]) -> tuple[Any, Any]:
    """PostgreSQL: the hold's row and its ledger row, written for each account `debited` (a
    CTE's column: none when refused), as parts of the statement that decides."""
    hold = insert(CreditHold).from_select(
        list(_HOLD.column_keys or ()),
        select(
            bindparam("b_hold", type_=String),
            debited,
            _AMOUNT,
            literal(0, BigInteger),
            literal("held", String),
            bindparam("b_purpose", type_=String),
            bindparam("b_request", type_=String),
            bindparam("b_expires", type_=Float),
            _NOW,
            null(),
            bindparam("b_key", type_=String),
            period,
        ),
    )
    ledger = insert(LedgerEntry).from_select(
        list(_LEDGER.column_keys or ()),
        select(
            debited,
            literal("reserve", String),
            -_AMOUNT,
            _AMOUNT,
            bindparam("b_hold", type_=String),
            _NOW,
        ),
    )
    return hold, ledger


#: The columns of the request's usage row a hold may write with it (`reserve`).
_USAGE_COLUMNS = tuple(UsageRecord.__table__.columns)


def _reserving(with_key: bool, with_usage: bool) -> Statement:
    """PostgreSQL: the decision, the hold and its ledger row (and, `with_usage`, the request's
    pending usage row: its columns as parameters `u_<column>`) in one statement (one round trip
    instead of three or four). With a key, answers (the counter's period start or NULL, accounts
    debited) as `_SPEND_AND_DEBIT` does; without, (accounts debited)."""
    spend = _SPEND_CLAUSE.cte("spend") if with_key else None
    debit_clause = update(Account).where(*_FUNDED)
    if spend is not None:
        debit_clause = debit_clause.where(exists(select(spend.c.period_start)))
    debit = (
        debit_clause.values(balance=Account.balance - _AMOUNT, reserved=Account.reserved + _AMOUNT)
        .returning(Account.id)
        .cte("debit")
    )
    period: ColumnElement[Any] = (
        select(spend.c.period_start).scalar_subquery() if spend is not None else null()
    )
    hold, ledger = _recorded(debit.c.id, period)
    written = [hold.cte("hold"), ledger.cte("ledger")]
    if with_usage:
        usage = insert(UsageRecord).from_select(
            [c.key for c in _USAGE_COLUMNS],
            select(*(bindparam(f"u_{c.key}", type_=c.type) for c in _USAGE_COLUMNS)).where(
                exists(select(debit.c.id))
            ),
        )
        written.append(usage.cte("usage"))
    debited = select(func.count()).select_from(debit).scalar_subquery()
    answer = select(period, debited) if spend is not None else select(debited)
    return one_row(Statement(answer.add_cte(*written)))  # scalar subqueries: one row


_RESERVE_IN_ONE = _reserving(with_key=False, with_usage=False)
_SPEND_RESERVE_IN_ONE = _reserving(with_key=True, with_usage=False)
_RESERVE_WITH_USAGE = _reserving(with_key=False, with_usage=True)
_SPEND_RESERVE_WITH_USAGE = _reserving(with_key=True, with_usage=True)
#: Takes back a key's hold whose debit did not happen (see `_spend`).
_UNSPEND = Statement(
    update(ApiKey)
    .where(ApiKey.id == bindparam("b_key"))
    .values(period_spend=ApiKey.period_spend - _AMOUNT)
)
_WHY_REFUSED = Statement(
    select(
        Account.balance,
        Account.disabled_at,
        Account.deleted_at,
        Account.on_hold,
        Account.debt,
        ApiKey.id,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.spend_limit,
        _IN_PERIOD,
        ApiKey.spend_period,
    )
    .select_from(Account)
    .outerjoin(
        ApiKey,
        and_(
            ApiKey.id == bindparam("b_key"),
            ApiKey.account_id == Account.id,
            ApiKey.kind == "model",
        ),
    )
    .where(Account.id == bindparam("b_account"))
)


#: The key's counter in the hold's period, read as the hold closes (before the unspent rest
#: is given back): NULL when the counter has moved on to a later period. The hold's columns are
#: named with their table: in a RETURNING clause SQLAlchemy names the updated table's columns
#: bare, and a bare `period_start` inside this subquery is the key's own (SQLite then compared
#: the key's period with itself, and reported a new period's spend for an old hold).
_KEY_SPEND_READ = (
    select(ApiKey.period_spend)
    .where(
        ApiKey.id == literal_column(f"{CreditHold.__tablename__}.api_key_id", String),
        ApiKey.period_start == literal_column(f"{CreditHold.__tablename__}.period_start", Float),
    )
    .scalar_subquery()
)


def _closing_clause(*conditions: ColumnElement[bool]) -> Any:
    """Closing is conditional on the hold still being held: every race but one loses here. The
    charge is capped at the held amount (and the caller never passes less than 0), so a
    provider's odd usage report can neither overcharge nor mint credit."""
    return (
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
        .returning(
            CreditHold.account_id,
            CreditHold.amount,
            CreditHold.charged,
            CreditHold.api_key_id,
            CreditHold.period_start,
            _KEY_SPEND_READ.label("key_spend"),
        )
    )


def _closing(*conditions: ColumnElement[bool]) -> Statement:
    return Statement(_closing_clause(*conditions))


def _closing_in_one(
    *conditions: ColumnElement[bool], with_usage: bool = False, with_outputs: bool = False
) -> Statement:
    """PostgreSQL: the hold's closing, the refund to the balance, the unspent rest given back to
    the key's counter and the ledger row (and, `with_usage`, the request's usage row closed with
    what was charged: `usage.repository.finishing`, parameters `u_<name>`; `with_outputs`, the
    request's output rows: `mirror.repository.outputs_inserting`, parameters `o_<column>`) in
    one statement (one round trip instead of three to five; a data-modifying WITH always runs
    to completion).
    Answers what `_closing` does, then the balance; no row when the hold was not held."""
    closed = _closing_clause(*conditions).cte("closed")
    refund_amount = closed.c.amount - closed.c.charged
    refund = (
        update(Account)
        .where(Account.id == closed.c.account_id)
        .values(
            balance=Account.balance + refund_amount,
            reserved=Account.reserved - closed.c.amount,
        )
        .returning(Account.balance)
        .cte("refund")
    )
    give_back = (
        update(ApiKey)
        .where(
            ApiKey.id == closed.c.api_key_id,
            ApiKey.period_start == closed.c.period_start,
            refund_amount != 0,
        )
        .values(period_spend=ApiKey.period_spend - refund_amount)
        .cte("give_back")
    )
    ledger = insert(LedgerEntry).from_select(
        list(_LEDGER.column_keys or ()),
        select(
            closed.c.account_id,
            bindparam("b_kind", type_=String),
            refund_amount,
            -closed.c.amount,
            bindparam("b_hold", type_=String),
            _NOW,
        ),
    )
    written = [give_back, ledger.cte("ledger")]
    if with_usage:
        charged = func.coalesce(select(closed.c.charged).scalar_subquery(), 0)
        written.append(usage_rows.finishing(charged, prefix="u_").cte("finished"))
    if with_outputs:
        written.append(outputs_inserting("o_").cte("outputs"))
    # One row always, NULLs when nothing closed: so a group commit may send it in a run
    # (`pg_pipeline`).
    answer = (
        closed.c.account_id,
        closed.c.amount,
        closed.c.charged,
        closed.c.api_key_id,
        closed.c.period_start,
        closed.c.key_spend,
        refund.c.balance,
    )
    return one_row(
        Statement(select(*(select(c).scalar_subquery() for c in answer)).add_cte(*written))
    )


_CLOSE = _closing()
#: The sweeper's release: also conditional on the expiry, which a running request renews.
_EXPIRED = CreditHold.expires_at < bindparam("b_now")
_CLOSE_EXPIRED = _closing(_EXPIRED)
_CLOSE_IN_ONE = _closing_in_one()
_CLOSE_WITH_USAGE = _closing_in_one(with_usage=True)
_CLOSE_WITH_USAGE_AND_OUTPUTS = _closing_in_one(with_usage=True, with_outputs=True)
_CLOSE_EXPIRED_IN_ONE = _closing_in_one(_EXPIRED)
_REFUND = Statement(
    update(Account)
    .where(Account.id == bindparam("b_account"))
    .values(
        balance=Account.balance + bindparam("b_refund"),
        reserved=Account.reserved - bindparam("b_amount"),
    )
    .returning(Account.balance)
)
#: The unspent rest of a hold leaves the key's counter, if the counter is still the period's
#: the hold was made in (a new period's counter started without it).
_GIVE_BACK = Statement(
    update(ApiKey)
    .where(ApiKey.id == bindparam("b_key"), ApiKey.period_start == bindparam("b_period"))
    .values(period_spend=ApiKey.period_spend - bindparam("b_refund"))
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


#: The ledger kinds of credit added to a balance: an operator's grant, a promotion code.
GRANT_KINDS = frozenset({"grant", "promo"})


async def grant(
    session: AsyncSession | Tx, account_id: str, amount: int, now: float, *, kind: str = "grant"
) -> bool:
    """Add `amount` (1 to `MAX_CREDITS`) to the balance, as ledger kind `kind` (one of
    `GRANT_KINDS`); False when the account would exceed `MAX_CREDITS` (or does not exist), and
    then nothing is written."""
    if not 0 < amount <= MAX_CREDITS:
        raise ValueError(f"a grant must be between 1 and {MAX_CREDITS}")
    if kind not in GRANT_KINDS:
        raise ValueError(f"no grant is of ledger kind {kind!r}")
    tx = as_tx(session)
    if await tx.execute(_GRANT, {"b_account": account_id, "b_amount": amount}) != 1:
        return False
    await _ledger(tx, account_id, kind, amount, 0, None, now)
    return True


async def adjust(session: AsyncSession | Tx, account_id: str, amount: int, now: float) -> bool:
    """Add `amount` (negative: take it away) to the balance, as ledger kind `adjustment`;
    False when the balance would go below 0 or the account past `MAX_CREDITS` (or there is no
    such account), and then nothing is written."""
    if amount == 0 or abs(amount) > MAX_CREDITS:
        raise ValueError(f"an adjustment must be between 1 and {MAX_CREDITS} either way")
    tx = as_tx(session)
    if await tx.execute(_ADJUST, {"b_account": account_id, "b_amount": amount}) != 1:
        return False
    await _ledger(tx, account_id, "adjustment", amount, 0, None, now)
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
    key: KeySpend | None = None,
    usage: UsageRow | None = None,
) -> str | None:
    """Move `amount` from balance to reserved (and add it to `key`'s spend counter), or return
    None if the account cannot fund it or the key may not spend it (`why_refused` says which).
    `usage`: the request's usage row, written with the hold (on PostgreSQL by the same
    statement), and only if the hold is made.

    One conditional statement decides: concurrent reservations can never overdraw an account
    nor overshoot a key's limit, on SQLite (writers queue) or PostgreSQL (the row lock
    re-checks the WHERE after waiting), and within a group commit (its ops run one after the
    other, each seeing what the last one left)."""
    if amount > MAX_CREDITS:  # no balance is that high (and the driver may not take the number)
        return None
    tx = as_tx(session)
    hold_id = ordered_id("hold", 24)
    if tx.dialect_name == "postgresql":
        return await _reserve_in_one(
            tx, account_id, amount, hold_id, purpose, request_id, expires_at, now, key, usage
        )
    period: float | None = None
    if key is None:
        if await tx.execute(_RESERVE, {"b_account": account_id, "b_amount": amount}) != 1:
            return None
    else:
        period = await _spend(tx, account_id, amount, key, now)
        if period is None:
            return None
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
            "api_key_id": key.key_id if key is not None else None,
            "period_start": period,
        },
    )
    await _ledger(tx, account_id, "reserve", -amount, amount, hold_id, now)
    if usage is not None:
        await usage_rows.insert(tx, usage)
    return hold_id


async def _reserve_in_one(
    tx: Tx,
    account_id: str,
    amount: int,
    hold_id: str,
    purpose: str,
    request_id: str,
    expires_at: float | None,
    now: float,
    key: KeySpend | None,
    usage: UsageRow | None,
) -> str | None:
    """PostgreSQL: `reserve` in one statement (`_reserving`)."""
    params: dict[str, Any] = {
        "b_account": account_id,
        "b_amount": amount,
        "b_hold": hold_id,
        "b_purpose": purpose,
        "b_request": request_id,
        "b_expires": expires_at,
        "b_now": now,
        "b_key": key.key_id if key is not None else None,
        "b_period": key.period_start if key is not None else None,
    }
    if usage is not None:
        params.update({f"u_{c.key}": getattr(usage, c.key) for c in _USAGE_COLUMNS})
    if key is None:
        statement = _RESERVE_WITH_USAGE if usage is not None else _RESERVE_IN_ONE
        row = await tx.first(statement, params)
        assert row is not None  # a SELECT of a scalar subquery: always one row
        return hold_id if row[0] else None
    statement = _SPEND_RESERVE_WITH_USAGE if usage is not None else _SPEND_RESERVE_IN_ONE
    row = await tx.first(statement, params)
    assert row is not None
    period, debited = row
    if period is not None and not debited:
        # As in `_spend`: the key's counter moved without a debit (nor a hold). Take it back.
        await tx.execute(_UNSPEND, params)
        return None
    return None if period is None else hold_id


async def _spend(tx: Tx, account_id: str, amount: int, key: KeySpend, now: float) -> float | None:
    """Add `amount` to the key's counter and debit the account, both or neither: the start of
    the counter's period, or None when refused."""
    params = {
        "b_account": account_id,
        "b_amount": amount,
        "b_key": key.key_id,
        "b_period": key.period_start,
        "b_now": now,
    }
    if tx.dialect_name != "postgresql":
        row = await tx.first(_SPEND, params)
        if row is None:
            return None
        if await tx.execute(_DEBIT_AFTER_SPEND, params) != 1:  # one writer: cannot happen
            raise RuntimeError("the account changed within its write transaction")
        return float(row[0])
    row = await tx.first(_SPEND_AND_DEBIT, params)
    assert row is not None  # a SELECT of two scalar subqueries: always one row
    period, debited = row
    if period is not None and not debited:
        # The account changed between the statement's snapshot and its row lock (a writer
        # that did not lock the account first: `lock_order`). Never a counter without a hold.
        await tx.execute(_UNSPEND, params)
        return None
    return None if period is None else float(period)


async def why_refused(
    session: AsyncSession | Tx, account_id: str, key: KeySpend | None
) -> Refusal | None:
    """What stood in the way of a refused hold, read in the transaction that refused it
    (None: the account does not exist)."""
    row = await as_tx(session).first(
        _WHY_REFUSED,
        {
            "b_account": account_id,
            "b_key": key.key_id if key is not None else None,
            "b_period": key.period_start if key is not None else 0.0,
        },
    )
    if row is None:
        return None
    balance, disabled_at, deleted_at, on_hold, debt, found, revoked_at, expires_at = row[:8]
    limit, spent, period = row[8:]
    account = {
        "balance": int(balance),
        "account_disabled": disabled_at is not None,
        "account_closed": deleted_at is not None,
        "on_hold": on_hold,
        "debt": int(debt),
    }
    if key is None:
        return Refusal(**account)
    return Refusal(
        **account,
        key_unusable=found is None or revoked_at is not None,
        key_expires_at=None if expires_at is None else float(expires_at),
        spend_limit=None if limit is None else int(limit),
        period_spend=int(spent or 0),
        spend_period=str(period or "never"),
    )


async def _close(
    session: AsyncSession | Tx,
    hold_id: str,
    *,
    status: str,
    charge: int | None,
    now: float,
    expired: bool = False,
    usage: Finish | None = None,
    outputs: Outputs | None = None,
) -> ClosedHold | None:
    """`expired`: the sweeper's release (`release_expired`). `usage`: the request's usage row is
    closed too, with what was charged (0 when the hold was no longer held). `outputs`: rows
    for the request's stored outputs, written too (with `usage` only)."""
    tx = as_tx(session)
    kind = "settle" if status == "settled" else "release"
    params = {"b_hold": hold_id, "b_status": status, "b_charge": max(charge or 0, 0), "b_now": now}
    if tx.dialect_name == "postgresql":
        if usage is not None:
            assert not expired  # no variant for the sweeper: it closes no request's row with it
            in_one = _CLOSE_WITH_USAGE if outputs is None else _CLOSE_WITH_USAGE_AND_OUTPUTS
            params.update(usage.params("u_"))
            if outputs is not None:
                params.update(output_arrays(outputs.files, outputs.account_id, now, "o_"))
        else:
            assert outputs is None
            in_one = _CLOSE_EXPIRED_IN_ONE if expired else _CLOSE_IN_ONE
        row = await tx.first(in_one, {**params, "b_kind": kind})
        return None if row is None or row[0] is None else _closed(row, balance=row[6])
    closed = await _close_in_turns(tx, hold_id, kind, params, expired)
    if usage is not None:
        await usage_rows.finish_as(tx, usage, closed.charged if closed is not None else 0)
    if outputs is not None:
        await insert_outputs(tx, outputs.files, outputs.account_id, now)
    return closed


async def _close_in_turns(
    tx: Tx, hold_id: str, kind: str, params: dict[str, Any], expired: bool
) -> ClosedHold | None:
    """SQLite: `_close` statement by statement."""
    now = params["b_now"]
    row = await tx.first(_CLOSE_EXPIRED if expired else _CLOSE, params)
    if row is None:
        return None
    amount, charged, key_id = int(row[1]), int(row[2]), row[3]
    refund = amount - charged
    moved = {
        "b_account": str(row[0]),
        "b_refund": refund,
        "b_amount": amount,
        "b_key": key_id,
        "b_period": row[4],
    }
    balance = await tx.first(_REFUND, moved)
    if key_id is not None and refund != 0:
        await tx.execute(_GIVE_BACK, moved)
    await _ledger(tx, str(row[0]), kind, refund, -amount, hold_id, now)
    return _closed(row, balance=None if balance is None else balance[0])


def _closed(row: Sequence[Any], *, balance: Any) -> ClosedHold:
    """A closed hold from its closing statement's row (`_closing`) and the balance after."""
    amount, charged, key_spend = int(row[1]), int(row[2]), row[5]
    return ClosedHold(
        str(row[0]),
        amount,
        charged,
        balance=None if balance is None else int(balance),
        key_id=None if row[3] is None else str(row[3]),
        key_spend=None if key_spend is None else int(key_spend) - (amount - charged),
    )


async def settle(
    session: AsyncSession | Tx,
    hold_id: str,
    charge: int,
    now: float,
    *,
    usage: Finish | None = None,
    outputs: Outputs | None = None,
) -> ClosedHold | None:
    """Charge up to the held amount; any rest returns to the balance. None: already closed.
    `usage`: also close the request's usage row with the charge (0 if already closed);
    `outputs` (with `usage`): also write the rows of the request's stored outputs. On
    PostgreSQL all in the same statement."""
    return await _close(
        session, hold_id, status="settled", charge=charge, now=now, usage=usage, outputs=outputs
    )


async def release(session: AsyncSession | Tx, hold_id: str, now: float) -> ClosedHold | None:
    """Give the whole hold back. None: it was already settled or released."""
    return await _close(session, hold_id, status="released", charge=None, now=now)


async def release_expired(
    session: AsyncSession | Tx, hold_id: str, now: float
) -> ClosedHold | None:
    """The sweeper's release: only while the hold is held and its expiry still past. None: it
    was closed, or renewed by its running request since it was found expired."""
    return await _close(session, hold_id, status="released", charge=None, now=now, expired=True)


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


async def balance_of(session: AsyncSession, account_id: str) -> tuple[int, int]:
    result = await session.execute(
        select(Account.balance, Account.reserved).where(Account.id == account_id)
    )
    row = result.one_or_none()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def charged_by(session: AsyncSession, hold_id: str) -> int | None:
    """What the hold finally charged (0: released); None while it is held, or if it is gone."""
    result = await session.execute(
        select(CreditHold.charged).where(CreditHold.id == hold_id, CreditHold.status != "held")
    )
    charged = result.scalar_one_or_none()
    return None if charged is None else int(charged)


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


async def latest_ledger(session: AsyncSession, account_id: str, *, limit: int) -> list[LedgerEntry]:
    result = await session.execute(
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(result.scalars())
