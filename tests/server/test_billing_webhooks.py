"""Stripe's webhooks against a live gateway, delivered by the Stripe simulator over real sockets,
on SQLite and PostgreSQL: credit bought exactly once, refunds and disputes taken back, forged
or stale deliveries refused, out-of-order events applied in the end."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import select
from tests.server.billing_live import SECRET, LiveBilling, live_billing

from reapi.testing import Fault
from reapi_server.billing import event_store, events
from reapi_server.billing.operator import stored_events
from reapi_server.models import Account, Dispute, Refund, StripeEvent
from reapi_server.testing.stripe_sim import Delivery, Tamper


@pytest.fixture
async def billing(tmp_path, migrated_template, database_url):
    async with live_billing(
        tmp_path / "live", migrated_template, database_url=database_url
    ) as live:
        yield live


async def _bought(billing: LiveBilling, pack: str = "starter", **complete) -> tuple[str, str, str]:
    """A person who bought `pack` (paid, credited): (account, top-up id, session id)."""
    account = await billing.person()
    started = await billing.checkout(account, pack)
    billing.sim.complete_session(started.session_id, **complete)
    await billing.paid(account, billing.billing.settings.pack(pack).credits)
    return account, started.top_up_id, started.session_id


def _charge_of(billing: LiveBilling, session_id: str) -> str:
    session = billing.sim.get(session_id, expand=["payment_intent"])
    return session["payment_intent"]["latest_charge"]


async def test_a_paid_checkout_credits_once_with_its_invoice_and_receipt(billing):
    account, top_up_id, session_id = await _bought(billing)
    await billing.idle()
    assert await billing.state(account) == (1000, 0, 0)
    [payment] = await billing.payments(account)
    assert payment.status == "paid" and payment.top_up_id == top_up_id
    assert payment.stripe_checkout_session_id == session_id
    assert payment.invoice_url and payment.invoice_url.startswith(billing.sim.base_url)
    assert payment.invoice_pdf_url and payment.stripe_charge_id and payment.stripe_customer_id
    assert (payment.amount, payment.currency, payment.credits) == (1000, "eur", 1000)
    assert (await billing.top_up(top_up_id)).status == "paid"
    assert len(await billing.mail("payment_receipt")) == 1
    [receipt] = await billing.mail_files(await billing.email_of(account))
    assert "receipt" in receipt.subject
    assert payment.invoice_url in receipt.text and payment.invoice_url in receipt.html
    # What Stripe was asked for: our id in the three places, an invoice, the price table's price.
    session = billing.sim.get(session_id, expand=["payment_intent"])
    assert session["client_reference_id"] == top_up_id
    assert session["metadata"]["top_up_id"] == top_up_id
    assert session["payment_intent"]["metadata"]["top_up_id"] == top_up_id
    assert session["invoice_creation"]["enabled"] is True and session["amount_subtotal"] == 1000
    assert await billing.unhandled() == 0


async def test_the_same_event_twice_and_concurrently_credits_once(billing):
    account, _, _ = await _bought(billing)
    completed = billing.sim.last_event("checkout.session.completed")["id"]
    for delivery in billing.sim.resend(completed):
        await asyncio.to_thread(delivery.wait)
    copies = billing.sim.deliver_concurrently(completed, copies=6)
    for delivery in copies:
        await asyncio.to_thread(delivery.wait)
    assert all(delivery.ok for delivery in copies)
    await billing.idle()
    assert await billing.state(account) == (1000, 0, 0)
    assert await billing.ledger_kinds(account) == [("purchase", 1000)]
    assert len(await billing.mail("payment_receipt")) == 1


async def test_two_events_for_one_session_credit_once(billing):
    """A bank debit: completed unpaid (pending), then settled (async_payment_succeeded). Held
    and delivered in the other order, then both again: one credit."""
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.hold_events()
    billing.sim.complete_session(started.session_id, pay_later=True)
    billing.sim.settle_session(started.session_id, succeeded=True)
    held = billing.sim.held_events()
    by_type = {billing.sim.get(event_id)["type"]: event_id for event_id in held}
    completed = by_type["checkout.session.completed"]
    succeeded = by_type["checkout.session.async_payment_succeeded"]
    billing.sim.hold_events(False)
    for delivery in billing.sim.release_events([succeeded, completed]):
        await asyncio.to_thread(delivery.wait)
    billing.sim.release_events()
    for event_id in (completed, succeeded):
        billing.sim.deliver_concurrently(event_id, copies=3)
    await billing.idle()
    assert await billing.state(account) == (1000, 0, 0)
    assert await billing.ledger_kinds(account) == [("purchase", 1000)]
    [payment] = await billing.payments(account)
    assert payment.status == "paid"


async def test_a_bank_debit_is_pending_then_paid_or_failed(billing):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id, pay_later=True)
    await billing.idle()
    assert (await billing.top_up(started.top_up_id)).status == "pending"
    assert [p.status for p in await billing.payments(account)] == ["pending"]
    assert await billing.state(account) == (0, 0, 0)
    billing.sim.settle_session(started.session_id, succeeded=False)
    await billing.idle()
    assert (await billing.top_up(started.top_up_id)).status == "failed"
    assert [p.status for p in await billing.payments(account)] == ["failed"]
    assert await billing.state(account) == (0, 0, 0)


async def test_an_expired_session_credits_nothing(billing):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.expire_session(started.session_id)
    await billing.idle()
    assert (await billing.top_up(started.top_up_id)).status == "expired"
    assert await billing.state(account) == (0, 0, 0)
    assert await billing.payments(account) == []


@pytest.mark.parametrize(
    "tamper", [Tamper.BODY, Tamper.STALE_TIMESTAMP, Tamper.WRONG_SECRET, Tamper.NO_SIGNATURE]
)
async def test_forged_or_stale_deliveries_are_refused(billing, tamper):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.hold_events()
    billing.sim.complete_session(started.session_id)
    completed = billing.sim.last_event("checkout.session.completed")["id"]
    [delivery] = billing.sim.send_tampered(completed, tamper)
    await asyncio.to_thread(delivery.wait)
    assert delivery.status == 400
    async with billing.db.read() as session:
        assert await session.get(StripeEvent, completed) is None  # nothing unsigned is stored
    assert await billing.state(account) == (0, 0, 0)


async def test_refusals_are_400_in_openai_shape(billing):
    async with httpx.AsyncClient(base_url=billing.base_url) as client:
        response = await client.post(
            "/billing/stripe/webhook",
            content=b'{"id": "evt_1", "type": "checkout.session.completed"}',
            headers={"stripe-signature": "t=1,v1=" + "0" * 64},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook"


async def test_a_rotated_secret_is_accepted_while_both_are_configured(
    tmp_path, migrated_template, database_url
):
    from pydantic import SecretStr

    new = "whsec_reapi_rotated"
    async with live_billing(
        tmp_path / "live",
        migrated_template,
        database_url=database_url,
        stripe_webhook_secrets=[SecretStr(SECRET), SecretStr(new)],
    ) as billing:
        billing.sim.roll_webhook_secret(billing.endpoint_id, new, keep_old=True)
        account, _, _ = await _bought(billing)
        billing.sim.roll_webhook_secret(billing.endpoint_id, new, keep_old=False)
        await _bought(billing)
        assert await billing.state(account) == (1000, 0, 0)


async def test_a_refund_delivered_before_its_purchase_ends_right(billing):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.hold_events()
    billing.sim.complete_session(started.session_id)
    charge = _charge_of(billing, started.session_id)
    billing.sim.refund(charge, amount=500)
    refunded = billing.sim.last_event("charge.refunded")["id"]
    completed = billing.sim.last_event("checkout.session.completed")["id"]
    billing.sim.hold_events(False)
    for delivery in billing.sim.release_events([refunded]):
        await asyncio.to_thread(delivery.wait)
    async with billing.db.read() as session:
        waiting = await session.get(StripeEvent, refunded)
        assert waiting is not None and waiting.handled_at is None
        assert waiting.last_error == "waiting"
    for delivery in billing.sim.release_events([completed]):
        await asyncio.to_thread(delivery.wait)
    billing.sim.release_events()

    async def settled() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(settled)  # the retry loop applied the refund
    assert await billing.state(account) == (500, 0, 0)
    assert await billing.ledger_kinds(account) == [("purchase", 1000), ("refund", -500)]


async def test_partial_refunds_take_back_their_sum(billing):
    account, _, session_id = await _bought(billing)
    charge = _charge_of(billing, session_id)
    billing.sim.refund(charge, amount=300)
    await billing.idle()
    billing.sim.refund(charge, amount=200)
    await billing.idle()
    # Both refund events again: nothing more.
    for event in billing.sim.events("charge.refunded"):
        billing.sim.resend(event["id"])
    await billing.idle()
    assert await billing.state(account) == (500, 0, 0)
    assert await billing.ledger_kinds(account) == [
        ("purchase", 1000),
        ("refund", -300),
        ("refund", -200),
    ]
    [payment] = await billing.payments(account)
    assert payment.amount_refunded == 500
    billing.sim.refund(charge)  # the rest
    await billing.idle()
    assert await billing.state(account) == (0, 0, 0)


async def test_a_refund_of_spent_credit_is_waived_by_default(billing):
    account, _, session_id = await _bought(billing)
    async with billing.db.write() as session:  # 800 of the 1000 credits spent
        row = await session.get(Account, account)
        row.balance = 200
        from reapi_server.models import LedgerEntry

        session.add(
            LedgerEntry(
                account_id=account, kind="settle", amount=-800, reserved_delta=0, created_at=1.0
            )
        )
    billing.sim.refund(_charge_of(billing, session_id))
    await billing.idle()
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
    assert (refund.credits, refund.credits_taken, refund.credits_waived) == (1000, 200, 800)


async def _dispute(billing: LiveBilling, outcome: str) -> str:
    account, _, session_id = await _bought(billing)
    async with billing.db.write() as session:  # 300 of the 1000 credits spent
        from reapi_server.models import LedgerEntry

        row = await session.get(Account, account)
        row.balance = 700
        session.add(
            LedgerEntry(
                account_id=account, kind="settle", amount=-300, reserved_delta=0, created_at=1.0
            )
        )
    dispute = billing.sim.open_dispute(_charge_of(billing, session_id))
    await billing.idle()
    assert await billing.state(account) == (0, 0, 300)  # 700 taken, 300 owed
    async with billing.db.read() as session:
        row = await session.get(Account, account)
        assert row.on_hold == "account_in_dispute"
    billing.sim.close_dispute(dispute["id"], outcome)
    await billing.idle()
    async with billing.db.read() as session:
        assert (await session.get(Account, account)).on_hold is None
        assert (await session.get(Dispute, dispute["id"])).status == outcome
    return account


async def test_a_dispute_lost_keeps_the_credits_taken(billing):
    account = await _dispute(billing, "lost")
    assert await billing.state(account) == (0, 0, 300)
    # The next purchase pays the debt first.
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 700)
    assert await billing.state(account) == (700, 0, 0)


async def test_a_dispute_won_gives_the_credits_back(billing):
    account = await _dispute(billing, "won")
    assert await billing.state(account) == (700, 0, 0)
    assert [kind for kind, _ in await billing.ledger_kinds(account)] == [
        "purchase",
        "dispute",
        "dispute_won",
    ]


async def test_a_dispute_closed_before_its_opening_is_applied_ends_right(billing):
    account, _, session_id = await _bought(billing)
    billing.sim.hold_events()
    dispute = billing.sim.open_dispute(_charge_of(billing, session_id))
    billing.sim.close_dispute(dispute["id"], "won")
    created = billing.sim.last_event("charge.dispute.created")["id"]
    closed = billing.sim.last_event("charge.dispute.closed")["id"]
    billing.sim.hold_events(False)
    billing.sim.release_events([closed, created])
    billing.sim.release_events()
    await billing.idle()
    assert await billing.state(account) == (1000, 0, 0)
    async with billing.db.read() as session:
        assert (await session.get(Account, account)).on_hold is None


async def test_without_a_webhook_secret_the_endpoint_does_not_exist(gateway):
    """Nothing unsigned is ever read: no secret, no endpoint (the API's 404, not a web page)."""
    response = await gateway.client.post(
        "/billing/stripe/webhook",
        content=b'{"id": "evt_1", "type": "checkout.session.completed"}',
        headers={"stripe-signature": "t=1,v1=" + "0" * 64, "content-type": "application/json"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    async with gateway.rt.db.read() as session:
        assert (await session.execute(select(StripeEvent))).first() is None


async def test_stripe_failing_mid_apply_moves_nothing_until_a_retry_credits_once(billing):
    """ "Seen" is never written apart from the credit: while Stripe answers 500 the event is
    stored but not handled, nothing moves and the delivery is answered 500 (Stripe redelivers);
    once Stripe answers, the retry loop or the redelivery credits it exactly once."""
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.server.faults.set(Fault.ERROR_500)  # every API call the gateway makes
    billing.sim.complete_session(started.session_id)
    completed = billing.sim.last_event("checkout.session.completed")["id"]

    async def first_attempt() -> Delivery | None:
        done = [d for d in billing.sim.deliveries(completed) if d.done]
        return done[0] if done else None

    first = await billing.wait_until(first_attempt, seconds=30)
    assert first.status is not None and first.status >= 500  # 502: Stripe unavailable
    async with billing.db.read() as session:
        event = await session.get(StripeEvent, completed)
        assert event is not None and event.handled_at is None and event.last_error
    assert await billing.state(account) == (0, 0, 0)
    assert await billing.ledger_kinds(account) == []
    assert await billing.payments(account) == []
    billing.sim.server.faults.clear()
    await billing.paid(account, 1000)
    await billing.idle()
    assert await billing.ledger_kinds(account) == [("purchase", 1000)]
    assert [p.status for p in await billing.payments(account)] == ["paid"]
    assert len(await billing.mail("payment_receipt")) == 1


async def test_event_types_not_handled_are_stored_and_ignored(billing):
    account, _, _ = await _bought(billing)
    await billing.idle()
    async with billing.db.read() as session:
        rows = (await session.execute(select(StripeEvent))).scalars().all()
    outcomes = {row.type: row.outcome for row in rows}
    assert outcomes["checkout.session.completed"] == "credited"
    others = {"customer.created", "charge.succeeded", "payment_intent.created"} & set(outcomes)
    assert others, outcomes
    assert all(outcomes[name] == "ignored" for name in others), outcomes
    assert all(row.handled_at is not None for row in rows)
    assert await billing.ledger_kinds(account) == [("purchase", 1000)]


async def _reserve(billing: LiveBilling, account: str, amount: int) -> str:
    """A request's hold on `amount` credits (a long video job), made as the gateway makes it."""
    import time as clock

    from reapi_server.credits import repository as credits

    async with billing.db.write() as session:
        hold = await credits.reserve(
            session,
            account,
            amount,
            purpose="video",
            request_id=f"req-{clock.monotonic_ns()}",
            expires_at=clock.time() + 600,
            now=clock.time(),
        )
    assert hold is not None
    return hold


async def _release(billing: LiveBilling, hold: str) -> None:
    import time as clock

    from reapi_server.credits import repository as credits

    async with billing.db.write() as session:
        assert await credits.release(session, hold, clock.time()) is not None


async def test_a_refund_of_held_credits_waits_and_cannot_be_kept_by_cancelling(billing):
    account, _, session_id = await _bought(billing)
    hold = await _reserve(billing, account, 1000)  # all of it held by a running job
    assert await billing.state(account) == (0, 1000, 0)
    billing.sim.refund(_charge_of(billing, session_id))
    await billing.idle()
    refunded = billing.sim.last_event("charge.refunded")["id"]
    async with billing.db.read() as session:  # held credit is not spent: nothing written off
        waiting = await session.get(StripeEvent, refunded)
        assert waiting is not None and waiting.handled_at is None
        assert waiting.last_error == "waiting"
        assert (await session.execute(select(Refund))).scalars().all() == []
    await _release(billing, hold)  # the job is cancelled: its hold comes back to the balance
    billing.sim.resend(refunded)
    await billing.idle()

    async def settled() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(settled)
    assert await billing.state(account) == (0, 0, 0)  # the refunded credits are gone
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
    assert (refund.credits, refund.credits_taken, refund.credits_waived) == (1000, 1000, 0)


async def test_noting_a_wait_on_held_credits_never_deadlocks_with_a_copy_applying_it(billing):
    """Two deliveries of one refund at once (Stripe redelivers one answered late): one notes
    that the refund waits, the other applies it. Applying claims the event's row, then locks
    the account; noting the wait must take them in that order too, or each holds what the
    other waits for (PostgreSQL aborts one: its attempt ended as `DBAPIError`)."""
    if not billing.db.is_postgres:
        pytest.skip("SQLite has one writer: nothing to order")
    from sqlalchemy import update

    from reapi_server.billing import event_store
    from reapi_server.billing.applying import Waiting
    from reapi_server.credits import movements

    account, _, session_id = await _bought(billing)
    await _reserve(billing, account, 1000)
    billing.sim.refund(_charge_of(billing, session_id))
    await billing.idle()
    refunded = billing.sim.last_event("charge.refunded")["id"]
    async with billing.db.read() as session:
        row = await event_store.get(session, refunded)
    assert row is not None and row.last_error == "waiting"
    wait = Waiting("credits held", hold_account=account, retry_after=1.0)
    async with billing.db.write() as applying:  # the copy applying it: the claim's row lock
        await applying.execute(
            update(StripeEvent)
            .where(StripeEvent.id == refunded)
            .values(attempts=StripeEvent.attempts)
            .execution_options(synchronize_session=False)
        )
        noting = asyncio.create_task(
            events._note_attempt(billing.db, row, "waiting", time.time(), wait, None)
        )
        await asyncio.sleep(0.5)  # noting takes what it can before it waits
        await movements.lock_account(applying, account)  # then the account, as applying does
    await noting  # before the fix: one of the two was aborted as a deadlock
    async with billing.db.read() as session:
        noted = await event_store.get(session, refunded)
        assert (await session.get(Account, account)).on_hold is not None
    assert noted is not None and noted.last_error == "waiting"
    # This attempt was noted (the retry loop may have made more of its own meanwhile).
    assert noted.attempts >= row.attempts + 1


async def test_a_refund_waits_for_held_credits_and_waives_only_what_was_spent(billing):
    account, _, session_id = await _bought(billing)
    hold = await _reserve(billing, account, 600)
    billing.sim.refund(_charge_of(billing, session_id))
    await billing.idle()
    assert await billing.state(account) == (400, 600, 0)  # waiting: nothing taken yet
    async with billing.db.write() as session:  # the job ends and is charged 600
        from reapi_server.credits import repository as credits

        assert await credits.settle(session, hold, 600, 2.0) is not None
    billing.sim.resend(billing.sim.last_event("charge.refunded")["id"])
    await billing.idle()

    async def settled() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(settled)
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
    assert (refund.credits, refund.credits_taken, refund.credits_waived) == (1000, 400, 600)


async def test_a_refund_during_an_inquiry_then_closed_gives_nothing_back(billing):
    account, _, session_id = await _bought(billing)
    charge = _charge_of(billing, session_id)
    dispute = billing.sim.open_dispute(charge, inquiry=True)
    await billing.idle()
    assert await billing.state(account) == (0, 0, 0)  # the inquiry took the 1000
    billing.sim.refund(charge)  # support refunds all of it while the inquiry is open
    await billing.idle()
    billing.sim.close_dispute(dispute["id"], "warning_closed")
    await billing.idle()
    # All the money went back: none of the credits may stay or come back.
    assert await billing.state(account) == (0, 0, 0)
    async with billing.db.read() as session:
        [refund] = (await session.execute(select(Refund))).scalars().all()
        assert (await session.get(Account, account)).on_hold is None
    # The refund's credits were taken back by the inquiry already: none written off.
    assert (refund.credits, refund.credits_taken, refund.credits_waived) == (1000, 0, 0)
    from reapi_server.billing import views

    async with billing.db.read() as session:
        history = await views.activity_of(session, account)
    [shown] = [item for item in history if item.kind == "refund"]
    assert shown.note == "1,000 credits were taken back by the dispute already"


async def test_a_partial_refund_during_an_inquiry_keeps_what_was_not_refunded(billing):
    account, _, session_id = await _bought(billing)
    charge = _charge_of(billing, session_id)
    dispute = billing.sim.open_dispute(charge, inquiry=True)
    await billing.idle()
    billing.sim.refund(charge, amount=300)
    await billing.idle()
    billing.sim.close_dispute(dispute["id"], "warning_closed")
    await billing.idle()
    assert await billing.state(account) == (700, 0, 0)


async def test_a_refund_then_a_dispute_won_gives_back_only_what_was_not_refunded(billing):
    account, _, session_id = await _bought(billing)
    charge = _charge_of(billing, session_id)
    billing.sim.refund(charge, amount=400)
    await billing.idle()
    assert await billing.state(account) == (600, 0, 0)
    dispute = billing.sim.open_dispute(charge, amount=600)
    await billing.idle()
    assert await billing.state(account) == (0, 0, 0)
    billing.sim.close_dispute(dispute["id"], "won")
    await billing.idle()
    assert await billing.state(account) == (600, 0, 0)


async def _refund_waiting(billing: LiveBilling) -> tuple[str, str, str, str]:
    """A person whose purchase's completion is held back and whose charge has a refund
    delivered: (account, session id, refund event, completion event), the refund waiting."""
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.hold_events()
    billing.sim.complete_session(started.session_id)
    billing.sim.refund(_charge_of(billing, started.session_id), amount=500)
    refunded = billing.sim.last_event("charge.refunded")["id"]
    completed = billing.sim.last_event("checkout.session.completed")["id"]
    billing.sim.hold_events(False)
    for delivery in billing.sim.release_events([refunded]):
        await asyncio.to_thread(delivery.wait)
    return account, started.session_id, refunded, completed


async def _event(billing: LiveBilling, event_id: str) -> StripeEvent:
    async with billing.db.read() as session:
        found = await session.get(StripeEvent, event_id)
    assert found is not None
    return found


async def test_a_purchase_wakes_only_the_events_waiting_for_it(billing, monkeypatch):
    """Two refunds wait for two purchases: crediting one makes its refund due (applied before
    its backoff would have) and leaves the other where its backoff put it (no Stripe fetch)."""
    # A backoff no loaded machine outlasts while the test runs (the first is 10 s): whatever
    # is applied early was woken.
    monkeypatch.setattr(events, "retry_delay", lambda attempts: 600.0)
    first, _, first_refund, first_done = await _refund_waiting(billing)
    second, second_session, second_refund, _ = await _refund_waiting(billing)
    intent = billing.sim.get(second_session)["payment_intent"]
    waited = await _event(billing, first_refund)
    before = await _event(billing, second_refund)
    assert before.last_error == "waiting" and before.attempts >= 1
    assert before.waiting_for == intent  # what it waits for: the PaymentIntent
    assert before.next_attempt_at >= before.received_at + 600  # backed off
    for delivery in billing.sim.release_events([first_done]):
        await asyncio.to_thread(delivery.wait)

    async def first_refund_applied() -> bool:
        return (await _event(billing, first_refund)).handled_at is not None

    await billing.wait_until(first_refund_applied, seconds=30)
    assert (await _event(billing, first_refund)).handled_at < waited.next_attempt_at  # woken
    assert await billing.state(first) == (500, 0, 0)
    after = await _event(billing, second_refund)
    assert time.time() < before.next_attempt_at  # (else its backoff was due: nothing to see)
    assert after.handled_at is None and after.attempts == before.attempts
    assert after.next_attempt_at == before.next_attempt_at
    assert await billing.state(second) == (0, 0, 0)


@pytest.fixture
async def impatient(tmp_path, migrated_template, database_url):
    """Billing that gives up on an event unapplied after 2 seconds."""
    async with live_billing(
        tmp_path / "live",
        migrated_template,
        database_url=database_url,
        event_give_up_after=2.0,
    ) as live:
        yield live


async def test_an_event_waiting_too_long_is_given_up_then_applied_when_its_purchase_comes(
    impatient,
):
    billing = impatient
    account, _, refunded, completed = await _refund_waiting(billing)

    async def given_up() -> bool:
        return (await _event(billing, refunded)).given_up_at is not None

    await billing.wait_until(given_up, seconds=20)
    stopped = await _event(billing, refunded)
    assert stopped.handled_at is None and stopped.next_attempt_at is None
    await asyncio.sleep(1.0)  # the retry loop (every 0.2 s) leaves it alone
    await asyncio.to_thread(billing.sim.wait_idle)
    # Stripe's own redelivery (a delivery the loaded gateway answered too late for it) may try
    # it again; the retry loop never does: no more attempts than deliveries.
    assert (await _event(billing, refunded)).attempts <= len(billing.sim.deliveries(refunded))
    # What Admin → Billing lists: given up, not applied.
    events, unhandled = await stored_events(billing.billing, unhandled_only=True)
    [shown] = [event for event in events if event.id == refunded]
    assert shown.given_up_at is not None and unhandled == 1
    # Its purchase arriving wakes it all the same: the money ends right.
    for delivery in billing.sim.release_events([completed]):
        await asyncio.to_thread(delivery.wait)

    async def settled() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(settled, seconds=10)
    assert await billing.state(account) == (500, 0, 0)


async def test_the_retry_loop_leaves_a_stored_event_to_the_delivery_applying_it(billing):
    """The delivery that stores an event applies it at once; the retry loop running meanwhile
    does not apply it too (a second Stripe fetch, a second attempt counted). Only when that
    attempt never noted its end, the lease later, does the loop take it."""
    started = await billing.checkout(await billing.person())
    billing.sim.hold_events()
    billing.sim.complete_session(started.session_id)
    billing.sim.refund(_charge_of(billing, started.session_id), amount=500)
    refunded = billing.sim.last_event("charge.refunded")["id"]
    stored_at = billing.billing.clock()
    async with billing.db.write() as session:  # stored, and the process stops before applying
        await event_store.store(
            session,
            event_id=refunded,
            type_="charge.refunded",
            object_id=_charge_of(billing, started.session_id),
            created=float(billing.sim.now()),
            now=stored_at,
        )
    await billing.billing.retry_due()
    assert (await _event(billing, refunded)).attempts == 0  # the delivery's to make
    clock = billing.billing.clock
    billing.billing.clock = lambda: clock() + event_store.FIRST_ATTEMPT_LEASE + 1
    try:
        await billing.billing.retry_due()
    finally:
        billing.billing.clock = clock
    taken = await _event(billing, refunded)
    assert taken.attempts == 1 and taken.last_error == "waiting"  # for its purchase
