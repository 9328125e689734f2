"""Automatic top-up with a payment method that settles later (a SEPA debit saved at
Checkout), and charges Stripe refuses outright, against a live gateway and the Stripe
simulator, on SQLite and PostgreSQL.

A PaymentIntent that comes back `processing` stays the attempt's one charge: its id is stored
at once, the attempt is `pending` (still in flight for the one-charge index), a later check
fetches that PaymentIntent and never creates another (a day later Stripe has forgotten the
idempotency key, and a new one would charge twice), and its webhook settles it."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from tests.server.billing_live import LiveBilling, live_billing

from reapi_server.billing.auto_top_up import AutoTopUpSettings, configure, consider
from reapi_server.billing.checkout import open_top_up
from reapi_server.billing.service import Billing
from reapi_server.models import BillingProfile, StripeEvent, TopUp

DAY = 24 * 3600


@pytest.fixture
async def billing(tmp_path, migrated_template, database_url):
    async with live_billing(
        tmp_path / "live", migrated_template, database_url=database_url
    ) as live:
        yield live


@pytest.fixture
async def unswept(tmp_path, migrated_template, database_url):
    """The gateway's own auto top-up sweep (every 0.5 s in `billing`) kept away: the test is
    the only one to drive an attempt. Under load the sweep came between the test's settings
    and its check, made the attempt itself, and the check found nothing to do."""
    async with live_billing(
        tmp_path / "live", migrated_template, database_url=database_url, auto_top_up_interval=3600.0
    ) as live:
        yield live


async def _saved_debit(billing: LiveBilling, *, threshold: int = 5000) -> str:
    """A person who bought 1,000 credits by SEPA debit, saving it, with auto top-up on (and
    below its threshold at once)."""
    account = await billing.person()
    started = await billing.checkout(account, save_card=True)
    billing.sim.complete_session(started.session_id, pay_later=True)
    await billing.idle()
    billing.sim.settle_session(started.session_id, succeeded=True)
    await billing.paid(account, 1000)
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None and profile.payment_method_id
    method = billing.sim.get(profile.payment_method_id)
    assert method["type"] == "sepa_debit"
    await configure(
        billing.billing,
        account,
        AutoTopUpSettings(enabled=True, threshold=threshold, pack_id="starter", monthly_cap=50_000),
    )
    return account


def _auto_intents(billing: LiveBilling) -> list[dict]:
    return [
        intent
        for intent in billing.sim.objects("payment_intent")
        if (intent.get("description") or "").startswith("Automatic top-up")
    ]


async def _auto_top_ups(billing: LiveBilling, account: str) -> list[TopUp]:
    async with billing.db.read() as session:
        rows = await session.execute(
            select(TopUp)
            .where(TopUp.account_id == account, TopUp.kind == "auto")
            .order_by(TopUp.created_at)
        )
        return list(rows.scalars())


async def _pending(billing: LiveBilling, account: str) -> TopUp:
    """Until the attempt is pending with its PaymentIntent (this check or the gateway's sweep
    started it: either may)."""

    async def started() -> TopUp | None:
        if await consider(billing.billing, account) not in ("pending", "none"):
            raise AssertionError("a processing debit is pending")
        found = [t for t in await _auto_top_ups(billing, account) if t.status == "pending"]
        return found[0] if found else None

    top_up: TopUp = await billing.wait_until(started)
    assert top_up.stripe_payment_intent_id is not None
    return top_up


def _later(billing: LiveBilling, seconds: float) -> Billing:
    """The test side's billing with its clock `seconds` ahead (the gateway's own keeps time)."""
    return Billing(
        billing.billing.settings,
        db=billing.db,
        mail=billing.billing.mail,
        links=billing.billing.links,
        clock=lambda: time.time() + seconds,
    )


async def test_a_processing_debit_is_fetched_again_never_charged_twice(billing):
    account = await _saved_debit(billing)
    top_up = await _pending(billing, account)
    [intent] = _auto_intents(billing)
    assert intent["status"] == "processing" and intent["id"] == top_up.stripe_payment_intent_id
    # A day later Stripe has forgotten the idempotency key; checks go on (every process's
    # sweep, the owner's spending): the attempt is still the one in flight, fetched again.
    billing.sim.advance_clock(DAY + 3600)
    later = _later(billing, DAY + 3600)
    try:
        for _ in range(3):
            assert await consider(later, account) in ("pending", "none")
    finally:
        await later.aclose()
        billing.sim.advance_clock(-(DAY + 3600))  # back to the gateway's time: signatures
    assert len(_auto_intents(billing)) == 1
    [still] = await _auto_top_ups(billing, account)
    assert still.status == "pending"
    # The bank debit settles: its webhook credits it, once.
    billing.sim.settle_payment_intent(intent["id"], succeeded=True)
    await billing.paid(account, 2000)
    await billing.idle()
    [paid] = await _auto_top_ups(billing, account)
    assert paid.status == "paid"
    assert [kind for kind, _ in await billing.ledger_kinds(account)] == ["purchase", "purchase"]
    [_, payment] = await billing.payments(account)
    assert (payment.status, payment.source, payment.amount) == ("paid", "auto", 1000)


async def test_a_processing_debit_that_fails_pauses_and_mails(billing):
    account = await _saved_debit(billing)
    top_up = await _pending(billing, account)
    billing.sim.settle_payment_intent(top_up.stripe_payment_intent_id, succeeded=False)
    await billing.idle()

    async def failed() -> TopUp | None:
        [found] = await _auto_top_ups(billing, account)
        return found if found.status == "failed" else None

    await billing.wait_until(failed)
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None and not profile.auto_enabled and profile.auto_paused_reason
    assert (await billing.state(account))[0] == 1000
    assert len(await billing.mail("auto_top_up_paused")) == 1
    assert await consider(billing.billing, account) == "none"
    assert len(_auto_intents(billing)) == 1


async def test_an_answer_lost_after_the_charge_is_found_not_charged_again(billing):
    """The PaymentIntent was made but its answer never stored (the process stopped): a check a
    day later finds it at Stripe by the attempt's id in its metadata, and charges nothing."""
    account = await _saved_debit(billing)
    top_up = await _pending(billing, account)
    async with billing.db.write() as session:
        row = await session.get(TopUp, top_up.id)
        assert row is not None
        row.status, row.stripe_payment_intent_id, row.checked_at = "open", None, None
    billing.sim.advance_clock(DAY + 3600)
    later = _later(billing, DAY + 3600)
    try:
        assert await consider(later, account) == "pending"
    finally:
        await later.aclose()
        billing.sim.advance_clock(-(DAY + 3600))
    assert len(_auto_intents(billing)) == 1
    [found] = await _auto_top_ups(billing, account)
    assert (found.status, found.stripe_payment_intent_id) == (
        "pending",
        top_up.stripe_payment_intent_id,
    )


async def test_an_attempt_stripe_never_saw_is_ended_a_day_later_charging_nothing(billing):
    """The attempt's request never reached Stripe and its answer never came (the process
    stopped between the two): a day later Stripe has forgotten the idempotency key and holds
    no PaymentIntent with the attempt's id, so nothing was charged. The attempt ends
    (`no_answer`) without creating a charge now, and auto top-up stays on."""
    account = await _saved_debit(billing)
    top_up = await _pending(billing, account)
    async with billing.db.write() as session:
        first = await session.get(TopUp, top_up.id)
        assert first is not None
        first.status = "failed"  # out of the way: the lost attempt below is the one in flight
        lost = open_top_up(account, billing.billing.settings.packs[0], kind="auto", now=time.time())
        session.add(lost)
    billing.sim.advance_clock(DAY + 3600)
    later = _later(billing, DAY + 3600)
    try:
        assert await consider(later, account) == "failed"
    finally:
        await later.aclose()
        billing.sim.advance_clock(-(DAY + 3600))
    assert len(_auto_intents(billing)) == 1  # only the first attempt's
    async with billing.db.read() as session:
        ended = await session.get(TopUp, lost.id)
        profile = await session.get(BillingProfile, account)
    assert ended is not None
    assert (ended.status, ended.failure_code, ended.stripe_payment_intent_id) == (
        "failed",
        "no_answer",
        None,
    )
    assert profile is not None and profile.auto_enabled and not profile.auto_paused_reason
    assert await billing.mail("auto_top_up_paused") == []


async def test_a_charge_stripe_refuses_ends_the_attempt_and_pauses(billing):
    """The saved method was detached at Stripe: creating the charge is a 400, every time. The
    attempt fails, auto top-up pauses and the owner is told; nothing retries it."""
    account = await _saved_debit(billing, threshold=0)  # not due yet
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None
    import stripe

    client = stripe.StripeClient(
        billing.sim.secret_key, base_addresses={"api": billing.sim.base_url}
    )
    client.v1.payment_methods.detach(profile.payment_method_id)
    await configure(
        billing.billing,
        account,
        AutoTopUpSettings(enabled=True, threshold=5000, pack_id="starter", monthly_cap=50_000),
    )

    async def ended() -> TopUp | None:
        await consider(billing.billing, account)
        found = await _auto_top_ups(billing, account)
        return found[0] if found and found[0].status == "failed" else None

    top_up = await billing.wait_until(ended)
    assert top_up.failure_code
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None
    assert (profile.auto_enabled, profile.auto_paused_reason) == (False, "charge_refused")
    mails = await billing.mail_files(await billing.email_of(account), count=2)
    [notice] = [m for m in mails if "paused" in m.subject]
    assert "refused to charge the saved payment method" in notice.text
    assert await consider(billing.billing, account) == "none"
    assert len(await _auto_top_ups(billing, account)) == 1


async def test_a_refund_that_came_first_is_woken_when_the_check_credits_the_debit(billing):
    """The debit settles and is refunded; the refund's webhook arrives first (the success is
    held back) and waits for the payment. The automatic top-up's own check, an hour on, finds
    the PaymentIntent succeeded and credits it: the refund is made due at once (not after its
    backoff), as when a purchase's own event credits it."""
    account = await _saved_debit(billing)
    top_up = await _pending(billing, account)
    intent_id = top_up.stripe_payment_intent_id
    assert intent_id is not None
    billing.sim.hold_events()
    billing.sim.settle_payment_intent(intent_id, succeeded=True)
    intent = billing.sim.get(intent_id)
    billing.sim.refund(intent["latest_charge"])
    refunded = billing.sim.last_event("charge.refunded")["id"]
    billing.sim.hold_events(False)
    for delivery in billing.sim.release_events([refunded]):
        await asyncio.to_thread(delivery.wait)

    async def event() -> StripeEvent:
        async with billing.db.read() as session:
            found = await session.get(StripeEvent, refunded)
        assert found is not None
        return found

    waiting = await event()
    assert waiting.handled_at is None and waiting.last_error == "waiting"
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at >= waiting.received_at + 10  # backed off
    async with billing.db.write() as session:  # the check's hour has passed
        row = await session.get(TopUp, top_up.id)
        assert row is not None
        row.checked_at = time.time() - 2 * 3600
    # This check or the gateway's sweep (every 0.5 s here) credits it: either wakes the refund.
    assert await consider(billing.billing, account) in ("credited", "none")

    async def refund_applied() -> StripeEvent | None:
        found = await event()
        return found if found.handled_at is not None else None

    applied = await billing.wait_until(refund_applied, seconds=30)
    assert applied.handled_at < waiting.next_attempt_at  # woken, not its backoff come round
    assert await billing.state(account) == (1000, 0, 0)  # credited 1,000, refunded in full


async def test_a_card_removed_while_its_charge_was_on_its_way_pauses_nothing(unswept):
    """The attempt read the card, then the person removed it before the charge reached Stripe:
    Stripe refuses the detached card, and that is the removal's doing, not the bank's. The
    attempt ends; automatic top-up is not "paused" and nobody is mailed that it was."""
    from reapi.testing import Fault
    from reapi_server.billing.saved_card import remove_saved_card

    account = await _saved_debit(unswept, threshold=0)  # not due yet
    unswept.sim.server.faults.set(Fault.ERROR_503)  # the charge's first try gets no answer
    await configure(
        unswept.billing,
        account,
        AutoTopUpSettings(enabled=True, threshold=5000, pack_id="starter", monthly_cap=50_000),
    )
    assert await consider(unswept.billing, account) == "unavailable"
    unswept.sim.server.faults.clear()
    assert await remove_saved_card(unswept.billing, account)  # detached at Stripe, forgotten
    real_clock = unswept.billing.clock
    unswept.billing.clock = lambda: real_clock() + 120  # the attempt is stuck: driven again
    try:
        await consider(unswept.billing, account)
    finally:
        unswept.billing.clock = real_clock
    [ended] = await _auto_top_ups(unswept, account)
    assert ended.status == "failed"
    async with unswept.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None and profile.auto_paused_reason is None
    assert await unswept.mail("auto_top_up_paused") == []
