"""The transactions behind a crossing, each one of its own, run off the request path
(`watch`) and by the periodic pass (`sweep`): the flag's conditional UPDATE decides who mails,
the mail is queued in the same transaction (the outbox), and nothing happens twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..api_keys.periods import next_reset, period_start
from ..billing import repository as billing_rows
from ..db import Database
from ..email.compose import MailComposer
from ..email.outbox import enqueue
from . import repository
from .repository import KeyAlertRow
from .rules import key_spend_now, key_threshold

__all__ = [
    "AlertMail",
    "Outcome",
    "TopUpComing",
    "arm_balance",
    "arm_key",
    "fire_balance",
    "fire_key",
    "sweep",
]

#: What a crossing's transaction found: it mailed, or the alert is (now) disarmed or armed,
#: or `waiting`: left armed, not mailed, while an automatic top-up refills the account (the
#: periodic pass looks again: mailed then if the balance is still below, the top-up failed).
Outcome = Literal["mailed", "disarmed", "armed", "waiting"]
#: Whether an automatic top-up is about to refill an account (`billing.auto_top_up`).
TopUpComing = Callable[[AsyncSession, str], Awaitable[bool]]

_PERIOD_WORDS = {"daily": "today", "weekly": "this week", "monthly": "this month"}


@dataclass(frozen=True, slots=True)
class AlertMail:
    """What the alert transactions need besides the database."""

    db: Database
    composer: MailComposer
    clock: Callable[[], float]
    #: None: no automatic top-up to wait for (tests of the alerts alone).
    top_up_coming: TopUpComing | None = None


async def fire_balance(mail: AlertMail, alert_id: int) -> Outcome:
    """The balance crossed below this threshold: disarm it and mail the account's owners, if
    no one did already (`mailed`); otherwise what the alert is now: `disarmed` (by another),
    `armed` (the balance is back above; or the alert is gone), `waiting` (an automatic top-up
    is about to refill the account: not mailed, left armed)."""
    now = mail.clock()
    async with mail.db.write() as session:
        account_id = await repository.disarm_balance(session, alert_id, now)
        if account_id is None:
            armed = await repository.balance_armed(session, alert_id)
            return "disarmed" if armed is False else "armed"
        if mail.top_up_coming is not None and await mail.top_up_coming(session, account_id):
            # Mailed now, "your balance is low" would be followed by the top-up's receipt a
            # second later: left armed instead, for the periodic pass to look again.
            await repository.keep_armed(session, alert_id)
            return "waiting"
        threshold, balance = await repository.threshold_and_balance(session, alert_id)
        auto_below = await _auto_top_up_below(session, account_id)
        for owner in await accounts.owners(session, account_id):
            message = mail.composer.balance_low(
                owner.email, threshold=threshold, balance=balance, auto_top_up_below=auto_below
            )
            await enqueue(session, message, now)
    return "mailed"


async def _auto_top_up_below(session: AsyncSession, account_id: str) -> int | None:
    """The balance below which automatic top-up buys credits, if it is on (and not paused, with
    a card to charge): the mail says so rather than only "add credits" while a top-up is coming."""
    profile = await billing_rows.profile(session, account_id)
    if profile is None or not profile.auto_enabled or profile.auto_paused_reason is not None:
        return None
    return profile.auto_threshold if profile.payment_method_id else None


async def arm_balance(mail: AlertMail, alert_id: int) -> bool:
    """The balance is back at or above the threshold: arm it again. Whether it is armed now."""
    async with mail.db.write() as session:
        if await repository.arm_balance(session, alert_id):
            return True
        return bool(await repository.balance_armed(session, alert_id))


def _period_words(period: str) -> str:
    return _PERIOD_WORDS.get(period, "in total")


def _reached(row: KeyAlertRow, now: float) -> bool:
    """The key has spent its alert's share of its limit in the current period."""
    if row.spend_limit is None or row.revoked:
        return False
    return key_spend_now(row, now) >= key_threshold(row.spend_limit, row.percent)


async def fire_key(mail: AlertMail, key_id: str) -> Outcome:
    """The key's spend reached its alert's share of its limit: disarm and mail, if it truly
    has (read again here) and no one did already. As `fire_balance`."""
    now = mail.clock()
    async with mail.db.write() as session:
        row = await repository.key_alert(session, key_id)
        if row is None or not _reached(row, now):
            return "armed" if row is None or row.armed else "disarmed"
        assert row.spend_limit is not None
        if not await repository.disarm_key(
            session, key_id, period_start(row.spend_period, now), now
        ):
            return "disarmed"
        for owner in await accounts.owners(session, row.account_id):
            message = mail.composer.key_spend_high(
                owner.email,
                key_name=row.key_name or "Unnamed key",
                percent=row.percent,
                spend=key_spend_now(row, now),
                limit=row.spend_limit,
                period_words=_period_words(row.spend_period),
                resets=next_reset(row.spend_period, now),
            )
            await enqueue(session, message, now)
    return "mailed"


async def arm_key(mail: AlertMail, key_id: str) -> bool:
    """Arm the key's alert again if its spend is back below the share (a new period began, or
    the limit was raised). Whether it is armed now."""
    now = mail.clock()
    async with mail.db.write() as session:
        row = await repository.key_alert(session, key_id)
        if row is None:
            return True
        if row.armed:
            return True
        if row.spend_limit is not None and not _reached(row, now):
            return await repository.arm_key(session, key_id)
        return False


# -- the periodic pass -----------------------------------------------------------------------


async def sweep(mail: AlertMail) -> int:
    """What no request saw: thresholds the balance went back above (credit bought, granted,
    redeemed) are armed again; crossings nobody mailed (the balance taken down by an operator,
    or a process stopped before its mail) are mailed; key alerts likewise, with each period.
    How many crossings this pass mailed."""
    now = mail.clock()
    async with mail.db.write() as session:
        await repository.rearm_balances(session)
        crossings = await repository.due_balance_crossings(session)
        rows = await repository.key_alerts(session)
    mailed = 0
    for alert_id in crossings:
        mailed += await fire_balance(mail, alert_id) == "mailed"
    for row in rows:
        if row.spend_limit is None:
            continue
        if row.armed and _reached(row, now):
            mailed += await fire_key(mail, row.key_id) == "mailed"
        elif not row.armed and not _reached(row, now):
            await arm_key(mail, row.key_id)
    return mailed
