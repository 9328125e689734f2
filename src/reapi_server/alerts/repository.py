"""All SQL about balance and key spend alerts.

Arming and disarming are UPDATEs conditional on the flag (and on the balance, read in the same
statement): of several processes that see one crossing, exactly one changes the row, and only
that one queues the mail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Account, ApiKey, BalanceAlert, KeySpendAlert

__all__ = [
    "KeyAlertRow",
    "arm_balance",
    "arm_key",
    "balance_alerts",
    "balance_alerts_of",
    "balance_armed",
    "clear_key_alert",
    "disarm_balance",
    "disarm_key",
    "due_balance_crossings",
    "key_alert",
    "key_alert_settings",
    "key_alerts",
    "key_alerts_of",
    "rearm_balances",
    "replace_thresholds",
    "set_key_alert",
    "threshold_and_balance",
]


def _changed(result: object) -> int:
    return int(result.rowcount)  # type: ignore[attr-defined]


_BALANCE = select(Account.balance).where(Account.id == BalanceAlert.account_id).scalar_subquery()


# -- balance thresholds --------------------------------------------------------------------------


async def balance_alerts_of(session: AsyncSession, account_id: str) -> list[BalanceAlert]:
    """The account's thresholds, highest first."""
    result = await session.execute(
        select(BalanceAlert)
        .where(BalanceAlert.account_id == account_id)
        .order_by(BalanceAlert.threshold.desc())
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def balance_alerts(session: AsyncSession) -> list[tuple[int, str, int, bool]]:
    """(id, account id, threshold, armed) of every threshold: what each process watches."""
    result = await session.execute(
        select(BalanceAlert.id, BalanceAlert.account_id, BalanceAlert.threshold, BalanceAlert.armed)
    )
    return [(int(a), str(b), int(c), bool(d)) for a, b, c, d in result.all()]


async def replace_thresholds(
    session: AsyncSession, account_id: str, thresholds: Sequence[int], *, now: float
) -> None:
    """Make the account's thresholds `thresholds`: those kept keep their state; a new one is
    armed when the balance is at or above it now (setting one below the balance is no
    crossing, and mails nothing)."""
    wanted = set(thresholds)
    await session.execute(
        delete(BalanceAlert).where(
            BalanceAlert.account_id == account_id, BalanceAlert.threshold.not_in(wanted)
        )
        if wanted
        else delete(BalanceAlert).where(BalanceAlert.account_id == account_id)
    )
    kept = await session.execute(
        select(BalanceAlert.threshold).where(BalanceAlert.account_id == account_id)
    )
    new = wanted - {int(t) for t in kept.scalars()}
    if not new:
        return
    balance = (
        await session.execute(select(Account.balance).where(Account.id == account_id))
    ).scalar_one()
    await session.execute(
        insert(BalanceAlert),
        [
            {
                "account_id": account_id,
                "threshold": threshold,
                "armed": int(balance) >= threshold,
                "created_at": now,
            }
            for threshold in sorted(new)
        ],
    )


async def disarm_balance(session: AsyncSession, alert_id: int, now: float) -> str | None:
    """The crossing: disarm the alert if it is armed and the balance is below its threshold
    now. The account's id when this call disarmed it (and so owes the mail), else None."""
    result = await session.execute(
        update(BalanceAlert)
        .where(
            BalanceAlert.id == alert_id,
            BalanceAlert.armed.is_(True),
            BalanceAlert.threshold > _BALANCE,
        )
        .values(armed=False, fired_at=now)
        .returning(BalanceAlert.account_id)
    )
    found = result.scalar_one_or_none()
    return None if found is None else str(found)


async def keep_armed(session: AsyncSession, alert_id: int) -> None:
    """Undo this transaction's `disarm_balance`: the crossing is not mailed yet."""
    await session.execute(
        update(BalanceAlert).where(BalanceAlert.id == alert_id).values(armed=True)
    )


async def arm_balance(session: AsyncSession, alert_id: int) -> bool:
    """Arm the alert again if the balance is back at or above its threshold."""
    result = await session.execute(
        update(BalanceAlert)
        .where(
            BalanceAlert.id == alert_id,
            BalanceAlert.armed.is_(False),
            BalanceAlert.threshold <= _BALANCE,
        )
        .values(armed=True)
    )
    return _changed(result) == 1


async def rearm_balances(session: AsyncSession, account_id: str | None = None) -> int:
    """Arm every disarmed threshold the balance is at or above (of one account, or all): after
    credit comes in (a promotion code, a purchase), and in the periodic pass."""
    statement = update(BalanceAlert).where(
        BalanceAlert.armed.is_(False), BalanceAlert.threshold <= _BALANCE
    )
    if account_id is not None:
        statement = statement.where(BalanceAlert.account_id == account_id)
    result = await session.execute(
        statement.values(armed=True).execution_options(synchronize_session=False)
    )
    return _changed(result)


async def due_balance_crossings(session: AsyncSession, *, limit: int = 500) -> list[int]:
    """Armed thresholds the balance is below: crossings nobody has mailed about yet (the
    balance fell by another way than a request, or the process that saw it stopped first)."""
    result = await session.execute(
        select(BalanceAlert.id)
        .join(Account, Account.id == BalanceAlert.account_id)
        .where(BalanceAlert.armed.is_(True), BalanceAlert.threshold > Account.balance)
        .limit(limit)
    )
    return [int(alert_id) for alert_id in result.scalars()]


async def balance_armed(session: AsyncSession, alert_id: int) -> bool | None:
    """The alert's flag (None: no such alert)."""
    result = await session.execute(select(BalanceAlert.armed).where(BalanceAlert.id == alert_id))
    armed = result.scalar_one_or_none()
    return None if armed is None else bool(armed)


async def threshold_and_balance(session: AsyncSession, alert_id: int) -> tuple[int, int]:
    result = await session.execute(
        select(BalanceAlert.threshold, Account.balance)
        .join(Account, Account.id == BalanceAlert.account_id)
        .where(BalanceAlert.id == alert_id)
    )
    threshold, balance = result.one()
    return int(threshold), int(balance)


# -- key spend -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyAlertRow:
    """A key's alert with what it is checked against."""

    key_id: str
    account_id: str
    key_name: str
    percent: int
    armed: bool
    spend_limit: int | None
    spend_period: str
    period_start: float
    period_spend: int
    revoked: bool
    fired_period: float | None


_KEY_ALERT_COLUMNS = (
    KeySpendAlert.key_id,
    KeySpendAlert.account_id,
    ApiKey.name,
    KeySpendAlert.percent,
    KeySpendAlert.armed,
    ApiKey.spend_limit,
    ApiKey.spend_period,
    ApiKey.period_start,
    ApiKey.period_spend,
    ApiKey.revoked_at,
    KeySpendAlert.fired_period,
)


def _key_row(row: Sequence[object]) -> KeyAlertRow:
    return KeyAlertRow(
        key_id=str(row[0]),
        account_id=str(row[1]),
        key_name=str(row[2] or ""),
        percent=int(row[3]),  # type: ignore[call-overload]
        armed=bool(row[4]),
        spend_limit=None if row[5] is None else int(row[5]),  # type: ignore[call-overload]
        spend_period=str(row[6]),
        period_start=float(row[7]),  # type: ignore[arg-type]
        period_spend=int(row[8]),  # type: ignore[call-overload]
        revoked=row[9] is not None,
        fired_period=None if row[10] is None else float(row[10]),  # type: ignore[arg-type]
    )


_KEY_ALERTS = select(*_KEY_ALERT_COLUMNS).join(ApiKey, ApiKey.id == KeySpendAlert.key_id)


async def key_alerts(session: AsyncSession) -> list[KeyAlertRow]:
    """Every key alert of a key not revoked."""
    result = await session.execute(_KEY_ALERTS.where(ApiKey.revoked_at.is_(None)))
    return [_key_row(row) for row in result.all()]


async def key_alerts_of(session: AsyncSession, account_id: str) -> list[KeyAlertRow]:
    result = await session.execute(_KEY_ALERTS.where(KeySpendAlert.account_id == account_id))
    return [_key_row(row) for row in result.all()]


async def key_alert_settings(session: AsyncSession, account_id: str) -> list[KeySpendAlert]:
    """The account's key alerts as set, with when each was set and last mailed (the checking
    rows, `key_alerts_of`, carry no times): its data export's."""
    result = await session.execute(
        select(KeySpendAlert)
        .where(KeySpendAlert.account_id == account_id)
        .order_by(KeySpendAlert.created_at)
    )
    return list(result.scalars())


async def key_alert(session: AsyncSession, key_id: str) -> KeyAlertRow | None:
    result = await session.execute(_KEY_ALERTS.where(KeySpendAlert.key_id == key_id))
    row = result.first()
    return None if row is None else _key_row(row)


async def set_key_alert(
    session: AsyncSession, account_id: str, key_id: str, percent: int, *, armed: bool, now: float
) -> None:
    """Set the key's percentage; a new or changed one starts `armed` as the caller found the
    key's spend against it."""
    found = await session.execute(
        select(KeySpendAlert.percent).where(KeySpendAlert.key_id == key_id)
    )
    current = found.scalar_one_or_none()
    if current is None:
        await session.execute(
            insert(KeySpendAlert).values(
                key_id=key_id, account_id=account_id, percent=percent, armed=armed, created_at=now
            )
        )
    elif int(current) != percent:
        await session.execute(
            update(KeySpendAlert)
            .where(KeySpendAlert.key_id == key_id)
            .values(percent=percent, armed=armed)
        )


async def clear_key_alert(session: AsyncSession, key_id: str) -> None:
    await session.execute(delete(KeySpendAlert).where(KeySpendAlert.key_id == key_id))


async def disarm_key(session: AsyncSession, key_id: str, period: float, now: float) -> bool:
    """The crossing, for the key's period starting at `period`: True when this call disarmed
    it (and so owes the mail)."""
    result = await session.execute(
        update(KeySpendAlert)
        .where(KeySpendAlert.key_id == key_id, KeySpendAlert.armed.is_(True))
        .values(armed=False, fired_at=now, fired_period=period)
    )
    return _changed(result) == 1


async def arm_key(session: AsyncSession, key_id: str) -> bool:
    result = await session.execute(
        update(KeySpendAlert)
        .where(KeySpendAlert.key_id == key_id, KeySpendAlert.armed.is_(False))
        .values(armed=True)
    )
    return _changed(result) == 1
