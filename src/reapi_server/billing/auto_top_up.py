"""Automatic top-up: when an account's balance falls below the threshold its owner set, buy
the pack they chose with the card they saved at a Checkout purchase, off-session.

Opt-in only, and never turned back on silently: a charge the bank refuses (authentication
required, declined) turns it off (`auto_paused_reason`) and mails the owner; only the owner's
own form turns it on again.

What keeps a card from being charged fifteen times in seconds:

- one automatic top-up in flight per account, by the database: a partial unique index on the
  `open` and `pending` ones (`TopUp`), whatever process or request races;
- the decision is taken with the account locked (PostgreSQL; SQLite has one writer), and
  checks a cooldown since the last charge (`billing.auto_top_up_cooldown`; a refused attempt
  pauses auto top-up instead) and a monthly cap on what automatic top-ups may charge;
- each attempt has its own idempotency key (the top-up's id) and one PaymentIntent: its id
  is stored the moment Stripe returns it, and from then on the attempt is fetched, never
  created again. A bank debit answers `processing` and settles days later: the attempt stays
  `pending` (in flight) until its webhook, or a fetch now and then, settles it. Stripe forgets
  an idempotency key after 24 hours; re-creating then would charge twice.
- a charge Stripe refuses outright (the bank, or a 400 on the request itself) ends the attempt
  and pauses auto top-up: asked again, it would be refused again.

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
from .settings import CreditPack
from .stripe_api import BillingUnavailable, CardRefused, StripeRefused

__all__ = [
    "AutoTopUpSettings",
    "Watcher",
    "configure",
    "consider",
    "month_start",
    "top_up_coming",
]

log = logging.getLogger("reapi_server.billing")

#: An attempt with no PaymentIntent known after this long (its answer was lost) is driven
#: again: found at Stripe by its metadata, or created with its own idempotency key, which
#: Stripe answers as the first time.
_STUCK_SECONDS = 60.0
#: A pending attempt (its PaymentIntent processing: a bank debit settles in days) is fetched
#: again this often; its webhook settles it sooner, this is for one that never came.
_RECHECK_SECONDS = 3600.0
#: Stripe keeps an idempotency key 24 hours: an attempt older than this is never created again.
_KEY_LIFETIME = 23 * 3600.0
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
    pack = await _due_pack(session, billing, account_id)
    if pack is None:
        return None
    top_up = open_top_up(account_id, pack, kind="auto", now=billing.clock())
    if not await repository.insert_auto_top_up(session, top_up):
        return None  # one is in flight already
    return top_up


async def top_up_coming(session: AsyncSession, billing: Billing, account_id: str) -> bool:
    """Whether an automatic top-up is about to refill the account: one just started (its
    charge not yet answered), or one the watcher starts at its next look (due now: on, with a
    card, not paused, the balance below its threshold, past the cooldown, within the monthly
    cap). Not a bank debit processing for days, nor one the cooldown or cap holds back: the
    low-balance alert (`alerts.crossings`) waits for the first kind only."""
    if not billing.enabled:
        return False
    last = await repository.last_auto_top_up(session, account_id)
    if last is not None and last.status == "open":
        return True
    profile = await repository.profile(session, account_id)
    if profile is None or profile.auto_paused_reason is not None:
        return False
    return await _due_pack(session, billing, account_id) is not None


async def _due_pack(session: AsyncSession, billing: Billing, account_id: str) -> CreditPack | None:
    """The pack an automatic top-up would buy for the account now, if one is due."""
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
    return pack


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What charging one automatic top-up needs, read in its transaction."""

    id: str
    account_id: str
    intent_id: str | None
    created_at: float
    amount: int
    currency: str
    pack_id: str
    customer: str
    method: str


async def _in_flight(session: AsyncSession, billing: Billing, account_id: str) -> TopUp | None:
    """The account's automatic top-up in flight, when it is due to be driven again: `open`
    with no answer from Stripe after `_STUCK_SECONDS`, or `pending` (its PaymentIntent is
    processing) and not fetched for `_RECHECK_SECONDS`. Claimed by `checked_at`."""
    last = await repository.last_auto_top_up(session, account_id)
    if last is None or last.status not in ("open", "pending"):
        return None
    now = billing.clock()
    wait = _STUCK_SECONDS if last.stripe_payment_intent_id is None else _RECHECK_SECONDS
    if (last.checked_at or last.created_at) > now - wait:
        return None
    last.checked_at = now
    return last


async def consider(billing: Billing, account_id: str) -> str:
    """Charge an automatic top-up for the account if one is due, or drive the one in flight:
    what came of it — `none` (nothing due), `credited` (the top-up is paid, whether this call
    or its webhook credited it), `pending` (Stripe is processing it: a bank debit takes days),
    `failed` (refused: auto top-up paused, the owner told), `review` (paid, but not what was
    asked: held for an operator) or `unavailable` (Stripe did not answer: driven again later)."""
    async with billing.db.write() as session:
        top_up = await _due_top_up(session, billing, account_id)
        if top_up is None:
            top_up = await _in_flight(session, billing, account_id)
        if top_up is None:
            return "none"
        profile = await repository.profile(session, account_id)
        assert profile is not None
        attempt = _Attempt(
            id=top_up.id,
            account_id=account_id,
            intent_id=top_up.stripe_payment_intent_id,
            created_at=top_up.created_at,
            amount=top_up.amount,
            currency=top_up.currency,
            pack_id=top_up.pack_id,
            customer=profile.stripe_customer_id or "",
            method=profile.payment_method_id or "",
        )
    intent_id = attempt.intent_id or await _create(billing, attempt)
    if intent_id in _ENDED:
        return intent_id
    try:  # with its charge expanded; never created again once its id is known
        intent = await billing.stripe().payment_intent(intent_id)
    except BillingUnavailable:
        return "unavailable"
    async with billing.db.write() as session:
        await apply_intent(session, charged_from(intent), billing.context())
        top_up = await repository.get_top_up(session, attempt.id)
        status = top_up.status if top_up is not None else "failed"
    if status == "paid":  # a refund or dispute of it may have come first and be waiting
        await billing.wake_dependents(intent_id)
    return _OUTCOMES.get(status, status)


#: What `_create` returns instead of a PaymentIntent id when the attempt went no further.
_ENDED = ("failed", "unavailable")
#: The top-up's status → what `consider` says.
_OUTCOMES = {"paid": "credited", "open": "pending", "pending": "pending"}


async def _create(billing: Billing, attempt: _Attempt) -> str:
    """Charge the saved card off-session, with the attempt's id as idempotency key: the new
    PaymentIntent's id, stored at once (`_remember_intent`); or `failed` / `unavailable`."""
    api = billing.stripe()
    now = billing.clock()
    if attempt.created_at < now - _STUCK_SECONDS:  # a retry: the first answer may be lost
        try:
            found = await api.find_payment_intent(
                customer=attempt.customer, since=attempt.created_at, top_up_id=attempt.id
            )
        except BillingUnavailable:
            return "unavailable"
        if found is not None:
            await _remember_intent(billing, attempt.id, str(found["id"]))
            return str(found["id"])
        if attempt.created_at < now - _KEY_LIFETIME:
            # Stripe has forgotten the key and holds no PaymentIntent for the attempt:
            # nothing was charged. End it; a new attempt (a new key) may follow.
            return await _end(billing, attempt.id, "no_answer", pause=False)
    metadata = {"top_up_id": attempt.id, "account_id": attempt.account_id}
    refused: CardRefused | None = None
    try:
        created = await api.create_payment_intent(
            {
                "amount": attempt.amount,
                "currency": attempt.currency,
                "customer": attempt.customer,
                "payment_method": attempt.method,
                "off_session": True,
                "confirm": True,
                "metadata": {**metadata, "pack_id": attempt.pack_id},
                "description": f"Automatic top-up {attempt.id}",
            },
            idempotency_key=attempt.id,
        )
    except CardRefused as error:
        refused = error
    except StripeRefused as error:  # asked again, refused again: end it, do not retry
        return await _end(
            billing,
            attempt.id,
            "charge_refused",
            stripe_code=error.stripe_code,
            card=attempt.method,
        )
    except BillingUnavailable:
        return "unavailable"  # still open: driven again once stuck
    if refused is not None:
        if refused.payment_intent_id is None:
            return await _end(billing, attempt.id, refused.code)
        intent_id = refused.payment_intent_id
    else:
        intent_id = str(created["id"])
    await _remember_intent(billing, attempt.id, intent_id)
    return intent_id


async def _remember_intent(billing: Billing, top_up_id: str, intent_id: str) -> None:
    """The attempt's PaymentIntent, stored before anything else can fail: from now on it is
    fetched, never created again (a second charge once Stripe forgot the key). `pending`: in
    flight until it settles, for the one-charge index too."""
    async with billing.db.write() as session:
        top_up = await repository.get_top_up(session, top_up_id)
        if top_up is None:
            return
        await lock_account(session, top_up.account_id)
        await session.refresh(top_up)
        if top_up.stripe_payment_intent_id is None:
            top_up.stripe_payment_intent_id = intent_id
        if top_up.status == "open":
            top_up.status = "pending"


async def _end(
    billing: Billing,
    top_up_id: str,
    code: str,
    *,
    pause: bool = True,
    stripe_code: str = "",
    card: str | None = None,
) -> str:
    """The attempt ends without a charge: refused (auto top-up paused, the owner mailed why)
    or, with `pause` off, given up. A refusal of `card` once the account no longer names it
    (the person removed it, or saved another, while the charge was on its way) is the removal's
    doing, not the bank's: given up, with nothing paused and nobody mailed."""
    async with billing.db.write() as session:
        top_up = await repository.get_top_up(session, top_up_id)
        if top_up is None:
            return "failed"
        await lock_account(session, top_up.account_id)
        await session.refresh(top_up)
        if pause and card is not None:
            profile = await repository.profile(session, top_up.account_id)
            pause = profile is not None and profile.payment_method_id == card
        if pause:
            await refuse_auto_top_up(session, top_up, code, billing.context())
        elif top_up.status in ("open", "pending"):
            top_up.status, top_up.closed_at = "failed", billing.clock()
        if stripe_code or not pause:
            top_up.failure_code = (stripe_code or code)[:64]
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
