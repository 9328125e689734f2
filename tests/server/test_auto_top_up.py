"""Automatic top-up against a live gateway and the Stripe simulator (off-session charges of the
card saved at Checkout), on SQLite and PostgreSQL: one charge however many requests cross the
threshold at once, a monthly cap, and a bank asking for authentication pauses it and tells the
owner."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import select
from tests.server.billing_live import LiveBilling, live_billing

from reapi_server.api_keys.service import issue_key
from reapi_server.billing.auto_top_up import AutoTopUpSettings, configure, consider
from reapi_server.models import BillingProfile, TopUp

PRICE = 40  # gpt-image-2 in the test catalog


@pytest.fixture
def cooldown() -> float:
    """The default: no second charge within 10 minutes of the last."""
    return 600.0


@pytest.fixture
def sweep() -> float:
    """How often the gateway's own task looks at every account (seconds)."""
    return 0.5


@pytest.fixture
async def billing(tmp_path, migrated_template, database_url, cooldown, sweep):
    data_dir = tmp_path / "live"
    async with live_billing(
        data_dir,
        migrated_template,
        database_url=database_url,
        auto_top_up_cooldown=cooldown,
        auto_top_up_interval=sweep,
    ) as live:
        yield live


async def _saved_card(billing: LiveBilling, *, threshold: int = 500, cap: int = 5000) -> str:
    """A person who bought 1,000 credits saving the card, with auto top-up on."""
    account = await billing.person()
    started = await billing.checkout(account, save_card=True)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
        assert profile is not None and profile.payment_method_id and profile.card_label
    await configure(
        billing.billing,
        account,
        AutoTopUpSettings(enabled=True, threshold=threshold, pack_id="starter", monthly_cap=cap),
    )
    return account


async def _key(billing: LiveBilling, account: str) -> str:
    async with billing.db.write() as session:
        _, issued = await issue_key(session, account, now=time.time())
    return issued.plaintext


async def _spend(billing: LiveBilling, key: str, requests: int) -> list[int]:
    async with httpx.AsyncClient(base_url=billing.base_url, timeout=30) as client:

        async def one() -> int:
            response = await client.post(
                "/v1/images/generations",
                json={"prompt": "p", "model": "gpt-image-2"},
                headers={"authorization": f"Bearer {key}"},
            )
            return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(requests))))


def _auto_charges(billing: LiveBilling) -> list[dict]:
    return [
        intent
        for intent in billing.sim.objects("payment_intent")
        if (intent.get("description") or "").startswith("Automatic top-up")
    ]


async def _top_ups(billing: LiveBilling, account: str) -> list[TopUp]:
    async with billing.db.read() as session:
        rows = await session.execute(
            select(TopUp).where(TopUp.account_id == account, TopUp.kind == "auto")
        )
        return list(rows.scalars())


async def test_fifty_requests_crossing_the_threshold_charge_once(billing):
    account = await _saved_card(billing)
    key = await _key(billing, account)
    statuses = await _spend(billing, key, 50)
    assert set(statuses) <= {200, 402} and statuses.count(200) >= 13
    # The owner's page, another process and the sweep may all look at once: still one charge.
    await asyncio.gather(*(consider(billing.billing, account) for _ in range(20)))

    async def charged() -> bool:
        return any(t.status == "paid" for t in await _top_ups(billing, account))

    await billing.wait_until(charged)
    await asyncio.sleep(1.5)  # a second round of the watcher, and its sweep
    await billing.idle()
    assert len(_auto_charges(billing)) == 1
    [top_up] = await _top_ups(billing, account)
    assert top_up.status == "paid"
    balance, _, _ = await billing.state(account)
    assert balance == 1000 + 1000 - statuses.count(200) * PRICE
    assert [kind for kind, _ in await billing.ledger_kinds(account)] == ["purchase", "purchase"]
    receipts = await billing.mail_files(await billing.email_of(account), count=2)
    assert any("automatically" in mail.text for mail in receipts)
    # Its idempotency key is the attempt's own id.
    assert _auto_charges(billing)[0]["metadata"]["top_up_id"] == top_up.id


@pytest.mark.parametrize("cooldown", [0.0])
async def test_concurrent_checks_start_one_charge(billing):
    """No cooldown: only the database's one-in-flight rule stands between 20 checks at once."""
    account = await _saved_card(billing)
    async with billing.db.write() as session:
        from reapi_server.models import Account

        (await session.get(Account, account)).balance = 100
        from reapi_server.models import LedgerEntry

        session.add(
            LedgerEntry(
                account_id=account, kind="settle", amount=-900, reserved_delta=0, created_at=1.0
            )
        )
    outcomes = await asyncio.gather(*(consider(billing.billing, account) for _ in range(20)))
    # The gateway's own sweep (every second here) may be the one that charges: it races too.
    # The check that charged says "credited" whether it or the webhook credited the top-up.
    assert sum(outcome != "none" for outcome in outcomes) <= 1
    assert set(outcomes) <= {"credited", "none"}
    await billing.idle()
    assert len(_auto_charges(billing)) == 1
    assert (await billing.state(account))[0] == 1100


@pytest.mark.parametrize("sweep", [3600.0])  # no sweep of the gateway's own races the check
async def test_a_check_says_credited_when_the_webhook_credited_first(billing):
    """The check that charged and the charge's webhook both try to credit it (once). Here the
    webhook wins for sure: the check's Stripe client hands back the new PaymentIntent only
    once the gateway's webhook has credited it. The check still says `credited`."""
    from reapi_server.billing.service import Billing
    from reapi_server.billing.stripe_api import StripeApi

    account = await _saved_card(billing, threshold=100, cap=100_000)
    db = billing.db

    class WebhookFirst(StripeApi):
        async def create_payment_intent(self, params, *, idempotency_key):
            created = await super().create_payment_intent(params, idempotency_key=idempotency_key)

            async def credited() -> bool:
                async with db.read() as session:
                    top_up = await session.get(TopUp, params["metadata"]["top_up_id"])
                return top_up is not None and top_up.status == "paid"

            await billing.wait_until(credited)
            return created

    check = Billing(
        billing.billing.settings,
        db=db,
        mail=billing.billing.mail,
        links=billing.billing.links,
        clock=time.time,
    )
    await check.aclose()
    check.api = WebhookFirst(billing.billing.settings)
    try:
        async with db.write() as session:  # below the threshold, without a request (no sweep)
            from reapi_server.models import Account

            (await session.get(Account, account)).balance = 0
            from reapi_server.models import LedgerEntry

            session.add(
                LedgerEntry(
                    account_id=account,
                    kind="settle",
                    amount=-1000,
                    reserved_delta=0,
                    created_at=1.0,
                )
            )
        assert await consider(check, account) == "credited"
    finally:
        await check.aclose()
    await billing.idle()
    assert len(_auto_charges(billing)) == 1
    assert (await billing.state(account))[0] == 1000


@pytest.mark.parametrize("cooldown", [0.0])
async def test_the_monthly_cap_stops_a_second_charge(billing):
    account = await _saved_card(billing, threshold=5000, cap=1000)  # one pack a month
    for _ in range(2):
        await consider(billing.billing, account)
    await billing.idle()
    assert len(_auto_charges(billing)) == 1
    assert (await billing.state(account))[0] == 2000


async def test_authentication_required_pauses_and_mails_the_owner(billing):
    account = await _saved_card(billing)
    billing.sim.queue_off_session_outcome("authentication_required")
    key = await _key(billing, account)
    await _spend(billing, key, 15)  # 600 credits: below 500

    async def paused() -> BillingProfile | None:
        async with billing.db.read() as session:
            profile = await session.get(BillingProfile, account)
        return profile if profile is not None and not profile.auto_enabled else None

    profile = await billing.wait_until(paused)
    assert profile.auto_paused_reason == "authentication_required"
    [top_up] = await _top_ups(billing, account)
    assert (top_up.status, top_up.failure_code) == ("failed", "authentication_required")
    email = await billing.email_of(account)
    mails = await billing.mail_files(email, count=2)
    [notice] = [m for m in mails if "paused" in m.subject]
    assert "confirm the payment" in notice.text and "/dashboard/billing" in notice.text
    assert (await billing.state(account))[0] == 400
    # Paused stays paused: more spending starts nothing, until the owner turns it on again.
    await _spend(billing, key, 2)
    await asyncio.sleep(1.5)
    assert len(_auto_charges(billing)) == 1
    assert await consider(billing.billing, account) == "none"
    before = (await billing.state(account))[0]
    await configure(
        billing.billing,
        account,
        AutoTopUpSettings(enabled=True, threshold=500, pack_id="starter", monthly_cap=5000),
    )
    # Charged once more, by this check ("credited", whether it or the webhook credited it) or
    # the gateway's sweep racing it ("none").
    assert await consider(billing.billing, account) in ("credited", "none")
    await billing.idle()
    await billing.paid(account, before + 1000)
    assert len(_auto_charges(billing)) == 2
    assert len(await billing.mail("auto_top_up_paused")) == 1


async def test_the_cooldown_stops_a_second_charge_the_cap_would_allow(billing):
    """Still below the threshold after a charge, with room under the cap: nothing more within
    the cooldown (the default, 10 minutes)."""
    account = await _saved_card(billing, threshold=5000, cap=100_000)
    # This check ("credited", by it or the webhook) or the gateway's sweep ("none") charges.
    assert await consider(billing.billing, account) in ("credited", "none")
    await billing.paid(account, 2000)
    for _ in range(3):
        assert await consider(billing.billing, account) == "none"
    await asyncio.sleep(1.5)  # the watcher's sweep sees it below the threshold too
    await billing.idle()
    assert len(_auto_charges(billing)) == 1
    assert (await billing.state(account))[0] == 2000


async def _paused(billing: LiveBilling, account: str) -> BillingProfile:
    async with billing.db.read() as session:
        profile = await session.get(BillingProfile, account)
    assert profile is not None
    return profile


@pytest.mark.parametrize("cooldown", [0.0])
async def test_a_refund_pauses_auto_top_up_and_it_charges_nothing_more(billing):
    account = await _saved_card(billing)
    [payment] = await billing.payments(account)
    billing.sim.refund(payment.stripe_charge_id, amount=600)  # money back: 400 credits left
    await billing.idle()
    assert (await billing.state(account))[0] == 400  # below the threshold of 500
    profile = await _paused(billing, account)
    assert (profile.auto_enabled, profile.auto_paused_reason) == (False, "refunded")
    assert await consider(billing.billing, account) == "none"
    await asyncio.sleep(1.5)  # the watcher's sweep sees it below the threshold too
    await billing.idle()
    assert _auto_charges(billing) == []
    mails = await billing.mail_files(await billing.email_of(account), count=2)
    [notice] = [m for m in mails if "paused" in m.subject]
    assert "refunded" in notice.text and "/dashboard/billing" in notice.text
    assert "Nothing was charged" not in notice.text


async def test_a_dispute_pauses_auto_top_up(billing):
    account = await _saved_card(billing)
    [payment] = await billing.payments(account)
    billing.sim.open_dispute(payment.stripe_charge_id, inquiry=True)
    await billing.idle()
    profile = await _paused(billing, account)
    assert (profile.auto_enabled, profile.auto_paused_reason) == (False, "disputed")
    assert await consider(billing.billing, account) == "none"
    assert _auto_charges(billing) == []


@pytest.mark.parametrize("cooldown", [0.0])
@pytest.mark.parametrize("state", ["disabled", "deleted", "in_debt"])
async def test_no_charge_for_an_account_disabled_deleted_or_in_debt(billing, state):
    """Below its threshold with a saved card, yet nothing is charged: an operator disabled the
    account, its deletion is under way, or it owes credits (a chargeback took more than it had)."""
    from reapi_server.billing.auto_top_up import _below_threshold
    from reapi_server.models import Account

    account = await _saved_card(billing)  # 1,000 credits: above its threshold of 500
    async with billing.db.write() as session:
        row = await session.get(Account, account)
        assert row is not None
        row.balance = 100
        if state == "disabled":
            row.disabled_at = 1.0
        elif state == "deleted":
            row.deleted_at = 1.0
        else:
            row.debt = 100
    assert await _below_threshold(billing.billing, [account]) == []
    assert await consider(billing.billing, account) == "none"
    await asyncio.sleep(1.5)  # the watcher's sweep looks too
    await billing.idle()
    assert _auto_charges(billing) == []
    assert await _top_ups(billing, account) == []
