"""Money kept exactly: Stripe Tax on top (refunds count what was charged), a paid session that
does not match its pack (kept visibly for review, never credited), a refund waiting on held
credits (bounded: the account takes no new hold), and a refund of disputed money (no debt
stays for money that went back). Against a live gateway and the Stripe simulator, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from sqlalchemy import select
from tests.server.billing_live import LiveBilling, live_billing

from reapi_server.api_keys.service import issue_key
from reapi_server.billing import views
from reapi_server.billing.operator import list_payments, refund_payment
from reapi_server.credits import repository as credits
from reapi_server.models import Account, Payment, Refund, StripeEvent, TopUp


@pytest.fixture
async def billing(tmp_path, migrated_template, database_url):
    async with live_billing(
        tmp_path / "live", migrated_template, database_url=database_url, automatic_tax=True
    ) as live:
        yield live


async def _bought(billing: LiveBilling) -> tuple[str, str]:
    """A person who bought the starter pack (1,000 credits for 10.00 EUR before tax): (account,
    charge id)."""
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    await billing.idle()
    session = billing.sim.get(started.session_id, expand=["payment_intent"])
    return account, session["payment_intent"]["latest_charge"]


async def _spent(billing: LiveBilling, account: str, credits_spent: int) -> None:
    """As if requests had spent `credits_spent` (a settled hold, as the ledger records it)."""
    from reapi_server.models import LedgerEntry

    async with billing.db.write() as session:
        row = await session.get(Account, account)
        assert row is not None
        row.balance -= credits_spent
        session.add(
            LedgerEntry(
                account_id=account,
                kind="settle",
                amount=-credits_spent,
                reserved_delta=0,
                created_at=1.0,
            )
        )


async def _settled(billing: LiveBilling) -> None:
    await billing.idle()

    async def done() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(done)


# -- Stripe Tax on top -------------------------------------------------------------------------


async def test_tax_on_top_is_kept_and_refunds_count_what_was_charged(billing):
    billing.sim.set_tax_percent(20)
    account, charge_id = await _bought(billing)
    [payment] = await billing.payments(account)
    assert (payment.amount, payment.amount_subtotal) == (1200, 1000)  # 10.00 + 2.00 tax
    # Half of what was charged is half of the credits (not 6.00 of 10.00: 600).
    await refund_payment(billing.billing, payment.id, amount=600)
    assert await billing.state(account) == (500, 0, 0)
    # The operator's "all of it" returns the tax too.
    done = await refund_payment(billing.billing, payment.id)
    assert done.amount == 600
    assert billing.sim.get(charge_id)["amount_refunded"] == 1200
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        history = await views.activity_of(session, account)
    [shown] = [item for item in history if item.kind == "payment"]
    assert (shown.amount, shown.tax, shown.status) == (1200, 200, "Refunded")
    assert shown.note == "10.00 EUR plus 2.00 EUR tax"
    assert shown.row()["tax"] == shown.row()["amount"] - 10


async def test_a_dispute_of_a_taxed_payment_takes_its_share_of_the_credits(billing):
    billing.sim.set_tax_percent(20)
    account, charge_id = await _bought(billing)
    billing.sim.open_dispute(charge_id, amount=300)  # a quarter of 12.00
    await _settled(billing)
    assert await billing.state(account) == (750, 0, 0)


# -- a paid session that does not match its pack ---------------------------------------------


async def test_a_payment_not_matching_its_pack_is_kept_for_review_not_credited(billing, caplog):
    account = await billing.person()
    started = await billing.checkout(account)
    async with billing.db.write() as session:  # what our side asked differs from what was paid
        top_up = await session.get(TopUp, started.top_up_id)
        assert top_up is not None
        top_up.amount = 900
    with caplog.at_level(logging.WARNING, logger="reapi_server.billing"):
        billing.sim.complete_session(started.session_id)
        await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)
    [payment] = await billing.payments(account)
    assert (payment.status, payment.amount, payment.credits) == ("review", 1000, 1000)
    warned = [
        r for r in caplog.records if r.getMessage() == f"payment {payment.id} held for review"
    ]
    assert warned and warned[0].levelno == logging.WARNING
    assert getattr(warned[0], "code", None) == "amount_mismatch"
    # The owner sees it, as the operator does.
    async with billing.db.read() as session:
        history = await views.activity_of(session, account)
    [shown] = history
    assert (shown.status, shown.credits) == ("Under review", 0)
    listed = {view.id: view for view in await list_payments(billing.billing)}
    assert listed[payment.id].status == "review"
    # The operator refunds it: the money goes back, no credits move.
    await refund_payment(billing.billing, payment.id)
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
        row = await session.get(Payment, payment.id)
    assert (refund.amount, refund.credits) == (1000, 0)
    assert row is not None and row.amount_refunded == 1000


async def test_a_dispute_of_a_payment_under_review_takes_none_of_the_other_credits(billing):
    """The payment under review was never credited: a chargeback of it takes nothing from what
    the account's other purchases bought, and leaves no debt, lost or won."""
    account, _ = await _bought(billing)  # 1,000 credits, paid as asked
    started = await billing.checkout(account)
    async with billing.db.write() as session:
        top_up = await session.get(TopUp, started.top_up_id)
        assert top_up is not None
        top_up.amount = 900
    billing.sim.complete_session(started.session_id)
    await _settled(billing)
    session = billing.sim.get(started.session_id, expand=["payment_intent"])
    charge_id = session["payment_intent"]["latest_charge"]
    dispute = billing.sim.open_dispute(charge_id)
    await _settled(billing)
    assert await billing.state(account) == (1000, 0, 0)
    billing.sim.close_dispute(dispute["id"], "lost")
    await _settled(billing)
    assert await billing.state(account) == (1000, 0, 0)
    async with billing.db.read() as session:
        row = await session.get(Account, account)
    assert row is not None and row.on_hold is None


# -- a refund waiting on held credits ----------------------------------------------------------


async def _reserve(billing: LiveBilling, account: str, amount: int) -> str | None:
    async with billing.db.write() as session:
        return await credits.reserve(
            session,
            account,
            amount,
            purpose="video",
            request_id=f"req-{time.monotonic_ns()}",
            expires_at=time.time() + 600,
            now=time.time(),
        )


async def test_a_refund_waiting_on_holds_lets_no_new_hold_start(billing):
    """An account that always has a request running would keep a refund waiting forever: while
    it waits, nothing new is held, so the holds in place are the last to close."""
    account, charge_id = await _bought(billing)
    hold = await _reserve(billing, account, 600)
    assert hold is not None
    billing.sim.refund(charge_id)
    await billing.idle()
    assert await billing.state(account) == (400, 600, 0)  # waiting: nothing taken yet
    assert await _reserve(billing, account, 100) is None  # a new request is not held
    async with billing.db.write() as session:
        _, issued = await issue_key(session, account, now=time.time())
    async with httpx.AsyncClient(base_url=billing.base_url, timeout=30) as client:
        answer = await client.post(
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers={"authorization": f"Bearer {issued.plaintext}"},
        )
    assert answer.status_code == 402
    assert answer.json()["error"]["code"] == "refund_pending"
    async with billing.db.write() as session:  # the running job ends, charged 600
        assert await credits.settle(session, hold, 600, time.time()) is not None
    await _settled(billing)  # the retry loop applies it: no redelivery needed
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
        row = await session.get(Account, account)
    assert (refund.credits, refund.credits_taken, refund.credits_waived) == (1000, 400, 600)
    assert row is not None and row.on_hold is None


@pytest.fixture
async def impatient(tmp_path, migrated_template, database_url):
    """Billing that gives up on an event unapplied after 2 seconds."""
    async with live_billing(
        tmp_path / "live",
        migrated_template,
        database_url=database_url,
        automatic_tax=True,
        event_give_up_after=2.0,
    ) as live:
        yield live


async def test_a_refund_waiting_on_holds_is_never_given_up(impatient):
    """Its wait always ends (the holds in place close or expire, and no new one starts), while
    a given-up refund would leave the account refusing every request until an operator came."""
    billing = impatient
    account, charge_id = await _bought(billing)
    hold = await _reserve(billing, account, 600)
    assert hold is not None
    billing.sim.refund(charge_id)
    await billing.idle()
    await asyncio.sleep(3.0)  # past the time other waiting events are given up
    async with billing.db.read() as session:
        waiting = (
            (await session.execute(select(StripeEvent).where(StripeEvent.handled_at.is_(None))))
            .scalars()
            .all()
        )
    assert waiting, "the refund should still be waiting for the hold"
    assert all(event.given_up_at is None for event in waiting)
    assert all(event.next_attempt_at is not None for event in waiting)
    async with billing.db.write() as session:
        assert await credits.settle(session, hold, 600, time.time()) is not None
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)


# -- refunds and disputes together -------------------------------------------------------------


async def test_a_refund_of_disputed_money_leaves_no_debt(billing):
    account, charge_id = await _bought(billing)
    await _spent(billing, account, 800)
    dispute = billing.sim.open_dispute(charge_id, inquiry=True)
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 800)  # 200 taken, 800 spent: owed
    billing.sim.refund(charge_id)  # support refunds all of it while the inquiry is open
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)  # the money went back: nothing owed
    billing.sim.close_dispute(dispute["id"], "warning_closed")
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        row = await session.get(Account, account)
    assert row is not None and row.on_hold is None


async def test_a_partial_refund_of_disputed_money_then_closed_owes_nothing(billing):
    account, charge_id = await _bought(billing)
    await _spent(billing, account, 800)
    dispute = billing.sim.open_dispute(charge_id, inquiry=True)
    await _settled(billing)
    billing.sim.refund(charge_id, amount=300)  # 300 credits: the 200 taken, then 100 owed
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 700)
    billing.sim.close_dispute(dispute["id"], "warning_closed")  # 700 not refunded come back
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)


async def test_a_refund_then_a_chargeback_lost_owes_only_what_the_chargeback_took(billing):
    account, charge_id = await _bought(billing)
    await _spent(billing, account, 800)
    billing.sim.refund(charge_id, amount=400)  # 200 taken, 200 spent: waived
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)
    dispute = billing.sim.open_dispute(charge_id, amount=600)
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 600)  # spent, and charged back
    billing.sim.close_dispute(dispute["id"], "lost")
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 600)


async def test_a_refund_then_a_chargeback_won_gives_back_what_was_not_refunded(billing):
    account, charge_id = await _bought(billing)
    await _spent(billing, account, 800)
    billing.sim.refund(charge_id, amount=400)
    await _settled(billing)
    dispute = billing.sim.open_dispute(charge_id, amount=600)
    await _settled(billing)
    billing.sim.close_dispute(dispute["id"], "won")
    await _settled(billing)
    assert await billing.state(account) == (0, 0, 0)  # 600 back: the debt of 600 paid
