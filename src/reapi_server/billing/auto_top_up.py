"""Automatic top-up: when an account's balance falls below the threshold its owner set, buy
the pack they chose with the card they saved at a Checkout purchase, off-session.

Opt-in only, and never turned back on silently: a charge the bank refuses (authentication
required, declined) turns it off (`auto_paused_reason`) and mails the owner; only the owner's
own form turns it on again.

What keeps a card from being charged fifteen times in seconds:

- one automatic top-up in flight per account, by the database: a partial unique index on the
  open ones (`TopUp`), whatever process or request races;
- the decision is taken with the account locked (PostgreSQL; SQLite has one writer), and
  checks a cooldown since the last charge (`billing.auto_top_up_cooldown`; a refused attempt
  pauses auto top-up instead) and a monthly cap on what automatic top-ups may charge;
- each attempt has its own idempotency key (the top-up's id): a call retried after a lost
  answer never charges twice.

It never runs on the request path. A request that settles notes its account in memory
(`Watcher.spent`: a set insert); a background task per process looks at the noted accounts
(one query) and at every enabled account below its threshold now and then (what another
process or a crash left), and charges those that are due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import anyio
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import GatewayError
from ..models import Account, BillingProfile, TopUp
from . import repository
from .applying import lock_account
from .checkout import open_top_up
from .purchases import apply_intent, charged_from, refuse_auto_top_up
from .service import Billing
from .stripe_api import BillingUnavailable, CardRefused

__all__ = ["AutoTopUpSettings", "Watcher", "configure", "consider", "month_start"]

log = logging.getLogger("reapi_server.billing")

#: An attempt still open after this long (its answer was lost) is driven again, with its own
#: idempotency key: Stripe answers what it did the first time.
_STUCK_SECONDS = 60.0
_BATCH = 200


def month_start(now: float) -> float:
    """The start of the calendar month (UTC) `now` is in."""
    year, month = time.gmtime(now)[:2]
    return float(time.mktime((year, month, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)


@dataclass(frozen=True, slots=True)
class AutoTopUpSettings:
    enabled: bool
    #: Credits: below this, top up.
    threshold: int
    pack_id: str
    #: Minor units of the pack's currency per calendar month.
    monthly_cap: int


class AutoTopUpInvalid(GatewayError):
    default_code = "invalid_auto_top_up"


async def configure(billing: Billing, account_id: str, wanted: AutoTopUpSettings) -> None:
    """The owner's own settings; turning it on clears a pause (this is the only way to)."""
    pack = billing.settings.pack(wanted.pack_id)
    if pack is None:
        raise AutoTopUpInvalid("choose one of the credit packs", param="pack")
    if wanted.threshold < 0:
        raise AutoTopUpInvalid("the threshold is 0 credits or more", param="threshold")
    if wanted.monthly_cap < pack.unit_amount:
        raise AutoTopUpInvalid(
            "the monthly limit must allow at least one top-up of this pack", param="monthly_cap"
        )
    async with billing.db.write() as session:
        await lock_account(session, account_id)
        profile = await repository.profile_or_new(session, account_id, billing.clock())
        if wanted.enabled and profile.payment_method_id is None:
            raise AutoTopUpInvalid(
                "save a card first: buy credits once with “save this card” ticked",
                param="enabled",
            )
        profile.auto_enabled = wanted.enabled
        profile.auto_threshold = wanted.threshold
        profile.auto_pack_id = pack.id
        profile.auto_monthly_cap = wanted.monthly_cap
        if wanted.enabled:
            profile.auto_paused_reason, profile.auto_paused_at = None, None
        profile.updated_at = billing.clock()


def _may_be_charged() -> tuple[ColumnElement[bool], ...]:
    """An account whose card may be charged: not disabled by an operator, not being deleted,
    owing nothing and with no chargeback open (a debt is paid by a purchase its owner chooses)."""
    return (
        Account.on_hold.is_(None),
        Account.disabled_at.is_(None),
        Account.deleted_at.is_(None),
        Account.debt == 0,
    )


async def _due_top_up(session: AsyncSession, billing: Billing, account_id: str) -> TopUp | None:
    """With the account locked: a new automatic top-up if one is due now, else None."""
    await lock_account(session, account_id)
    row = (
        await session.execute(
            select(Account.balance, BillingProfile)
            .join(BillingProfile, BillingProfile.account_id == Account.id)
            .where(Account.id == account_id, *_may_be_charged())
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if row is None:
        return None
    balance, profile = int(row[0]), row[1]
    pack = billing.settings.pack(profile.auto_pack_id or "")
    if (
        not profile.auto_enabled
        or profile.payment_method_id is None
        or profile.stripe_customer_id is None
        or pack is None
        or balance >= profile.auto_threshold
    ):
        return None
    now = billing.clock()
    last = await repository.last_auto_top_up(session, account_id, charging_only=True)
    if last is not None and last.created_at > now - billing.settings.auto_top_up_cooldown:
        return None
    spent = await repository.auto_spent_since(session, account_id, month_start(now))
    if spent + pack.unit_amount > profile.auto_monthly_cap:
        return None
    top_up = open_top_up(account_id, pack, kind="auto", now=now)
    if not await repository.insert_auto_top_up(session, top_up):
        return None  # one is in flight already
    return top_up


async def _stuck(session: AsyncSession, billing: Billing, account_id: str) -> TopUp | None:
    """An open attempt whose answer was lost, to drive again with its own key."""
    last = await repository.last_auto_top_up(session, account_id)
    stuck = last is not None and last.status == "open"
    if stuck and last is not None and last.created_at < billing.clock() - _STUCK_SECONDS:
        return last
    return None


async def consider(billing: Billing, account_id: str) -> str:
    """Charge an automatic top-up for the account if one is due: what happened (`none`,
    `credited`, `failed`, `unavailable`)."""
    async with billing.db.write() as session:
        top_up = await _due_top_up(session, billing, account_id)
        if top_up is None:
            top_up = await _stuck(session, billing, account_id)
        if top_up is None:
            return "none"
        profile = await repository.profile(session, account_id)
        assert profile is not None
        customer, method = profile.stripe_customer_id, profile.payment_method_id
        top_up_id, amount, currency, pack_id = (
            top_up.id,
            top_up.amount,
            top_up.currency,
            top_up.pack_id,
        )
    api = billing.stripe()
    metadata = {"top_up_id": top_up_id, "account_id": account_id, "pack_id": pack_id}
    refused: CardRefused | None = None
    try:
        intent = await api.create_payment_intent(
            {
                "amount": amount,
                "currency": currency,
                "customer": customer,
                "payment_method": method,
                "off_session": True,
                "confirm": True,
                "metadata": metadata,
                "description": f"Automatic top-up {top_up_id}",
            },
            idempotency_key=top_up_id,
        )
    except CardRefused as error:
        refused = error
    except BillingUnavailable:
        return "unavailable"  # still open: driven again once stuck
    if refused is not None:
        if refused.payment_intent_id is None:
            return await _refused_without_intent(billing, top_up_id, refused.code)
        intent = await api.payment_intent(refused.payment_intent_id)
    else:
        intent = await api.payment_intent(str(intent["id"]))  # with its charge expanded
    charged = charged_from(intent)
    async with billing.db.write() as session:
        outcome = await apply_intent(session, charged, billing.context())
    return "credited" if outcome == "credited" else outcome


async def _refused_without_intent(billing: Billing, top_up_id: str, code: str) -> str:
    async with billing.db.write() as session:
        top_up = await repository.get_top_up(session, top_up_id)
        if top_up is not None:
            await refuse_auto_top_up(session, top_up, code, billing.context())
    return "failed"


async def _below_threshold(billing: Billing, account_ids: list[str] | None) -> list[str]:
    """Accounts with auto top-up on whose balance is below their threshold (of `account_ids`,
    or every one)."""
    query = (
        select(Account.id)
        .join(BillingProfile, BillingProfile.account_id == Account.id)
        .where(
            BillingProfile.auto_enabled.is_(True),
            Account.balance < BillingProfile.auto_threshold,
            *_may_be_charged(),
        )
    )
    if account_ids is not None:
        query = query.where(Account.id.in_(account_ids))
    async with billing.db.read() as session:
        return [str(found) for found in (await session.execute(query.limit(_BATCH))).scalars()]


class Watcher:
    """Each process's auto top-up task: requests note the accounts they charged (`spent`); the
    task checks them soon after, and every enabled account now and then."""

    def __init__(self, billing: Billing) -> None:
        self.billing = billing
        self._noted: set[str] = set()
        self._wake = asyncio.Event()
        #: Whether this process runs the task (nothing is noted otherwise).
        self.running = False

    def spent(self, account_id: str) -> None:
        """A request charged the account (no I/O: a set insert and an event)."""
        if self.running:
            self._noted.add(account_id)
            self._wake.set()

    async def round(self, *, everyone: bool) -> int:
        """Check the noted accounts (and with `everyone`, all): how many charges started."""
        noted, self._noted = list(self._noted), set()
        due = set(await _below_threshold(self.billing, noted)) if noted else set()
        if everyone:
            due.update(await _below_threshold(self.billing, None))
        started = 0
        for account_id in sorted(due):
            try:
                outcome = await consider(self.billing, account_id)
            except Exception as error:  # the next round looks again
                log.warning("auto top-up failed", extra={"code": type(error).__name__})
                continue
            started += outcome != "none"
        return started

    async def run(self) -> None:
        interval = self.billing.settings.auto_top_up_interval
        next_sweep = 0.0
        self.running = True
        while True:
            with anyio.move_on_after(interval):
                await self._wake.wait()
            self._wake.clear()
            await anyio.sleep(0.2)  # let the requests that settle together note their accounts
            everyone = time.monotonic() >= next_sweep
            if everyone:
                next_sweep = time.monotonic() + interval
            try:
                await self.round(everyone=everyone)
            except Exception as error:  # a database hiccup must not end the loop
                log.warning("auto top-up round failed", extra={"code": type(error).__name__})
