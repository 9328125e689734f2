"""Dashboard → Billing: buying through Stripe Checkout (verified users only, the price from the
server's table), the success and cancel pages, automatic top-up settings, the history and its
CSV; and what the pages say with billing off. The Stripe simulator stands in for Stripe."""

from __future__ import annotations

import csv
import io
import re
import time

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from tests.server.billing_live import PACKS, SECRET
from tests.web.helpers import PASSWORD, mail_to, new_email

from reapi_server.billing import event_store
from reapi_server.billing.settings import BillingSettings, CreditPack
from reapi_server.models import Payment, TopUp
from reapi_server.testing.stripe_sim import StripeSimulator


@pytest.fixture
def sim():
    with StripeSimulator() as simulator:
        yield simulator


def _billing(sim: StripeSimulator, **overrides) -> BillingSettings:
    values = {
        "stripe_secret_key": SecretStr(sim.secret_key),
        "stripe_webhook_secrets": [SecretStr(SECRET)],
        "stripe_api_base": sim.base_url,
        "packs": PACKS,
        "success_wait_seconds": 0.3,
    }
    values.update(overrides)
    return BillingSettings(**values)


@pytest.fixture
async def shop(make_gateway, sim):
    return await make_gateway(public_base_url="http://gateway.test", billing=_billing(sim))


@pytest.fixture
async def db_shop(database_url, make_gateway, sim):
    """`shop` on SQLite, then on PostgreSQL."""
    return await make_gateway(
        database_url=database_url, public_base_url="http://gateway.test", billing=_billing(sim)
    )


async def _person(gateway, browsers, *, verified: bool = True):
    browser = browsers(gateway)
    email = new_email()
    await browser.sign_up(email)
    if verified:
        [mail] = await mail_to(gateway.rt, email)
        await browser.submit(mail.link("/verify"), "/verify", {"token": mail.token("/verify")})
    return browser, email


async def _apply_all(gateway, sim: StripeSimulator, first: str | None = None) -> None:
    """What the webhook does, for an in-process gateway the simulator cannot call (the event
    `first` before the others)."""
    events = sim.events()
    events.sort(key=lambda event: event["id"] != first)
    for event in events:
        async with gateway.rt.db.write() as session:
            await event_store.store(
                session,
                event_id=event["id"],
                type_=event["type"],
                object_id=event["data"]["object"].get("id"),
                created=float(event["created"]),
                now=gateway.rt.now(),
            )
        await gateway.rt.billing.apply(event["id"])


async def test_billing_off_says_so_and_sells_nothing(web, browsers):
    browser, _ = await _person(web, browsers)
    page = await browser.get("/dashboard/billing")
    assert page.status_code == 200
    assert "Billing is off" in page.text and "Continue to payment" not in page.text
    refused = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"}
    )
    assert refused.status_code == 409


async def test_only_verified_people_buy(shop, browsers):
    browser, _ = await _person(shop, browsers, verified=False)
    page = await browser.get("/dashboard/billing")
    assert "Verify your email address to buy credits" in page.text
    # One way to verify on the page, not one per section (promotion codes point to it).
    assert page.text.count("Send a new link from Settings") == 1
    assert "as above, to redeem promotion codes" in page.text
    refused = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"}
    )
    assert refused.status_code == 403
    async with shop.rt.db.read() as session:
        assert (await session.execute(select(TopUp))).first() is None


async def test_buying_goes_to_checkout_at_the_server_s_price(shop, browsers, sim):
    browser, email = await _person(shop, browsers)
    page = await browser.get("/dashboard/billing")
    assert "Continue to payment" in page.text and "10.00 EUR" in page.text
    assert "Prices in USD" in page.text  # two currencies: grouped
    assert sim.base_url in page.headers["content-security-policy"]  # form-action allows it
    response = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/checkout",
        # A browser cannot set the price: only the pack's id is read.
        {"pack": "starter", "unit_amount": "1", "credits": "999999", "save_card": "yes"},
    )
    assert response.status_code == 303
    url = response.headers["location"]
    assert url.startswith(sim.base_url + "/c/pay/")
    [session] = sim.objects("checkout.session")
    assert session["amount_subtotal"] == 1000 and session["currency"] == "eur"
    # The session was made with the top-up's id as Stripe idempotency key: Stripe (and its
    # simulator) refuses that key on another endpoint, so a retried call cannot make a second.
    async with httpx.AsyncClient(auth=(sim.secret_key, "")) as stripe_client:
        reused = await stripe_client.post(
            f"{sim.base_url}/v1/customers",
            headers={"Idempotency-Key": session["client_reference_id"]},
        )
    assert reused.status_code == 400, reused.text
    assert reused.json()["error"]["type"] == "idempotency_error"
    assert session["customer_email"] == email and session["customer_creation"] == "always"
    paid = sim.complete_session(session["id"])
    intent = sim.get(paid["payment_intent"])
    assert intent["setup_future_usage"] == "off_session"
    assert intent["metadata"]["top_up_id"] == session["client_reference_id"]
    assert session["success_url"].startswith("http://gateway.test/dashboard/billing/success?")
    unknown = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "free-credits"}
    )
    assert unknown.status_code == 400 and "no such credit pack" in unknown.text


async def test_success_page_waits_for_the_webhook_then_says_it_is_late(shop, browsers, sim):
    browser, _ = await _person(shop, browsers)
    response = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "large"}
    )
    [session] = sim.objects("checkout.session")
    top_up = session["client_reference_id"]
    sim.complete_session(session["id"])
    late = await browser.get(f"/dashboard/billing/success?top_up={top_up}")
    assert late.status_code == 200
    assert "being confirmed" in late.text and 'http-equiv="refresh"' in late.text
    await _apply_all(shop, sim)
    paid = await browser.get(f"/dashboard/billing/success?top_up={top_up}")
    assert "Payment received" in paid.text and "10,000 credits" in paid.text
    # The buyer's own top-up only.
    other, _ = await _person(shop, browsers)
    assert (await other.get(f"/dashboard/billing/success?top_up={top_up}")).status_code == 404
    # Paid meanwhile (another tab): the cancel page does not say nothing was charged.
    paid_anyway = await browser.get(f"/dashboard/billing/cancel?top_up={top_up}")
    assert "Payment received" in paid_anyway.text and "nothing was charged" not in paid_anyway.text
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    left = sim.objects("checkout.session")[-1]["client_reference_id"]
    cancelled = await browser.get(f"/dashboard/billing/cancel?top_up={left}")
    assert "nothing was charged" in cancelled.text
    assert response.status_code == 303


async def test_history_lists_payments_with_invoices_and_a_formula_safe_csv(
    make_gateway, sim, browsers
):
    packs = [CreditPack(id="odd", name="=HYPERLINK(1)", credits=100, unit_amount=500)]
    gateway = await make_gateway(
        public_base_url="http://gateway.test", billing=_billing(sim, packs=packs)
    )
    browser, _ = await _person(gateway, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "odd"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]["latest_charge"]
    sim.refund(charge, amount=200)
    await _apply_all(gateway, sim)
    history = await browser.get("/dashboard/billing/history")
    assert history.status_code == 200
    assert "Refund:" in history.text and "Partly refunded" in history.text
    assert "/invoice/" in history.text and "PDF" in history.text
    download = await browser.get("/dashboard/billing/history.csv")
    assert download.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["type"] for row in rows] == ["refund", "payment"]
    assert all(not row["product"].startswith("=") for row in rows)
    assert rows[1]["amount"] == "5.00" and rows[0]["amount"] == "-2.00"
    assert rows[1]["invoice_url"].startswith(sim.base_url)


async def test_auto_top_up_needs_a_saved_card_and_keeps_what_was_typed(shop, browsers, sim):
    browser, _ = await _person(shop, browsers)
    page = await browser.get("/dashboard/billing")
    assert "buy credits once with" in page.text  # no card: no form
    refused = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/auto-top-up",
        {"enabled": "yes", "threshold": "500", "pack": "starter", "monthly_cap": "50"},
    )
    assert refused.status_code == 400 and "save a card first" in refused.text
    await _buy_saving_card(shop, browser, sim)
    page = await browser.get("/dashboard/billing")
    assert "Visa •••• 4242" in page.text
    bad = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/auto-top-up",
        {"enabled": "yes", "threshold": "lots", "pack": "starter", "monthly_cap": "5"},
    )
    assert bad.status_code == 400 and "Enter a number of credits" in bad.text
    assert 'value="lots"' in bad.text
    # A cap no column holds, or one whose conversion would hold the event loop: refused.
    for cap in ("1e30", "1e300000", "sNaN"):
        huge = await browser.submit(
            "/dashboard/billing",
            "/dashboard/billing/auto-top-up",
            {"enabled": "no", "threshold": "500", "pack": "starter", "monthly_cap": cap},
        )
        assert huge.status_code == 400 and "Enter an amount" in huge.text, cap
    saved = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/auto-top-up",
        {"enabled": "yes", "threshold": "500", "pack": "starter", "monthly_cap": "50.00"},
    )
    assert saved.status_code == 303
    page = await browser.get(saved.headers["location"])
    assert "automatic top-up settings are saved" in page.text
    assert 'value="50.00"' in page.text and "below 500 credits" in page.text


async def test_turning_auto_top_up_on_needs_a_recent_sign_in(shop, browsers, sim):
    """It charges the saved card on its own: a session past its ten minutes (a stolen cookie)
    does not set it to charge without end until its person types their password; turning it
    off asks nothing."""
    browser, _ = await _person(shop, browsers)
    await _buy_saving_card(shop, browser, sim)
    start = time.time()
    shop.rt.clock = lambda: start + 11 * 60
    form = {"enabled": "yes", "threshold": "999999", "pack": "starter", "monthly_cap": "100000"}
    asked = await browser.submit("/dashboard/billing", "/dashboard/billing/auto-top-up", form)
    assert asked.status_code == 403 and 'name="current_password"' in asked.text
    assert "charge your saved card automatically" in asked.text
    assert 'value="999999"' not in (await browser.get("/dashboard/billing")).text  # not saved
    off = {**form, "enabled": "no"}
    page = "/dashboard/billing"
    assert (await browser.submit(page, "/dashboard/billing/auto-top-up", off)).status_code == 303
    confirmed = {**form, "confirm_access": "1", "current_password": PASSWORD}
    saved = await browser.submit(page, "/dashboard/billing/auto-top-up", confirmed)
    assert saved.status_code == 303 and "auto_top_up_saved" in saved.headers["location"]


async def test_deleting_the_account_expires_its_open_checkout(shop, browsers, sim):
    """Checkout open in one tab, the account deleted in another: the session is expired at
    Stripe, so it cannot take money for credits that would have no account (its top-up goes
    with the account: nothing would credit or record the payment)."""
    browser, email = await _person(shop, browsers)
    bought = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"}
    )
    assert bought.status_code == 303
    deleted = await browser.submit(
        "/settings/delete",
        "/settings/delete",
        {"confirmation": email, "current_password": PASSWORD},
    )
    assert deleted.status_code == 303
    [session] = sim.objects("checkout.session")
    assert session["status"] == "expired"


async def test_deleting_the_account_takes_its_saved_card_off_and_deletes_the_customer(
    shop, browsers, sim
):
    """The card was saved for the account's automatic top-up; the account gone, it would stay
    chargeable at Stripe (from its dashboard) for as long as the customer lives, and the
    customer would keep the person's email address there."""
    browser, email = await _person(shop, browsers)
    await _buy_saving_card(shop, browser, sim)
    assert "Visa •••• 4242" in (await browser.get("/dashboard/billing")).text
    [card] = sim.objects("payment_method")
    assert card["customer"] is not None
    await _delete_account(browser, email)
    [card] = sim.objects("payment_method")
    assert card["customer"] is None
    assert sim.objects("customer") == []  # deleted there (with the address it held)


async def _saved_card(gateway, browser, sim) -> None:
    """A purchase with "save this card" ticked, then automatic top-up turned on."""
    await _buy_saving_card(gateway, browser, sim)
    on = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/auto-top-up",
        {"enabled": "yes", "threshold": "500", "pack": "starter", "monthly_cap": "50.00"},
    )
    assert on.status_code == 303


async def _profile(gateway):
    from reapi_server.models import BillingProfile

    async with gateway.rt.db.read() as session:
        [profile] = (await session.execute(select(BillingProfile))).scalars()
    return profile


async def test_a_person_removes_their_saved_card(shop, browsers, sim):
    """Short of deleting the account: the card is taken off the Stripe customer (no longer
    chargeable from anywhere), forgotten here, and automatic top-up is off."""
    browser, _ = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    page = await browser.get("/dashboard/billing")
    assert "Visa •••• 4242" in page.text and "Remove card</button>" in page.text
    assert 'action="/dashboard/billing/card/remove"' in page.text
    # A form of our own pages only (CSRF), as every other.
    forged = await browser.client.post("/dashboard/billing/card/remove", data={})
    assert forged.status_code == 403
    assert (await _profile(shop)).payment_method_id is not None

    removed = await browser.submit("/dashboard/billing", "/dashboard/billing/card/remove", {})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/dashboard/billing?done=card_removed#auto-top-up"
    [card] = sim.objects("payment_method")
    assert card["customer"] is None  # detached at Stripe
    [customer] = sim.objects("customer")
    assert customer["invoice_settings"]["default_payment_method"] is None
    profile = await _profile(shop)
    assert (profile.payment_method_id, profile.card_label, profile.auto_enabled) == (
        None,
        None,
        False,
    )
    page = await browser.get(removed.headers["location"])
    assert "Your saved card is removed" in page.text and "no card saved" in page.text
    assert "Visa •••• 4242" not in page.text.split("Recent")[0]
    assert "Remove card</button>" not in page.text
    again = await browser.submit("/dashboard/billing", "/dashboard/billing/card/remove", {})
    assert again.headers["location"] == "/dashboard/billing?done=no_card#auto-top-up"
    refused = await browser.submit(
        "/dashboard/billing",
        "/dashboard/billing/auto-top-up",
        {"enabled": "yes", "threshold": "500", "pack": "starter", "monthly_cap": "50.00"},
    )
    assert refused.status_code == 400 and "save a card first" in refused.text


async def test_a_card_detached_at_stripe_already_is_forgotten_and_an_outage_keeps_it(
    shop, browsers, sim
):
    """Stripe unreachable: nothing changes and the page says to try again. Detached already
    (from Stripe's dashboard): forgotten here all the same."""
    from reapi.testing import Fault

    browser, _ = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    sim.server.faults.set(Fault.ERROR_503)  # every call the gateway makes
    down = await browser.submit("/dashboard/billing", "/dashboard/billing/card/remove", {})
    sim.server.faults.clear()
    assert down.status_code == 502 and "your card is still saved" in down.text
    [card] = sim.objects("payment_method")
    assert card["customer"] is not None
    assert (await _profile(shop)).payment_method_id == card["id"]
    assert (await _profile(shop)).auto_enabled

    async with httpx.AsyncClient(trust_env=False) as stripe_dashboard:
        detach = await stripe_dashboard.post(
            f"{sim.base_url}/v1/payment_methods/{card['id']}/detach",
            headers={"Authorization": f"Bearer {sim.secret_key}"},
        )
    assert detach.status_code == 200, detach.text
    removed = await browser.submit("/dashboard/billing", "/dashboard/billing/card/remove", {})
    assert removed.headers["location"] == "/dashboard/billing?done=card_removed#auto-top-up"
    assert (await _profile(shop)).payment_method_id is None


async def _delete_account(browser, email) -> None:
    deleted = await browser.submit(
        "/settings/delete",
        "/settings/delete",
        {"confirmation": email, "current_password": PASSWORD},
    )
    assert deleted.status_code == 303


async def _outcomes(gateway) -> dict[str, str | None]:
    from reapi_server.models import StripeEvent

    async with gateway.rt.db.read() as session:
        rows = (await session.execute(select(StripeEvent))).scalars()
        return {row.type: row.outcome for row in rows}


async def _tombstones(gateway) -> list[str]:
    from reapi_server.models import DeletedTopUp

    async with gateway.rt.db.read() as session:
        return list((await session.execute(select(DeletedTopUp.id))).scalars())


async def test_a_payment_landing_after_the_deletion_is_refunded_and_recorded(
    db_shop, browsers, sim, caplog
):
    """Paid seconds before the account's deletion, its webhook applied after: the top-up went
    with the account, so nothing can be credited. The payment is refunded in full at Stripe,
    kept on record without an account (with its refund), logged, and its event says so on
    Admin → Billing; the top-up's tombstone goes with the retention job after 30 days."""
    from tests.web.staff import signed_in_admin

    from reapi_server.models import Refund
    from reapi_server.retention import purge_once

    browser, email = await _person(db_shop, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])  # paid; its webhook not applied yet
    await _delete_account(browser, email)
    [top_up_id] = await _tombstones(db_shop)
    assert top_up_id == session["client_reference_id"]

    await _apply_all(db_shop, sim)
    [refund] = sim.objects("refund")
    assert refund["amount"] == 1000 and refund["status"] == "succeeded"
    assert refund["metadata"]["requested_by"] == "gateway"
    outcomes = await _outcomes(db_shop)
    paid_events = ("checkout.session.completed", "payment_intent.succeeded")
    assert sorted(outcomes[kind] for kind in paid_events) == ["account_deleted", "nothing"]
    assert any(
        r.levelname == "WARNING" and "after its account was deleted" in r.getMessage()
        for r in caplog.records
    )
    await _apply_all(db_shop, sim)  # charge.refunded, after the refund: already recorded
    assert (await _outcomes(db_shop))["charge.refunded"] == "nothing"
    assert len(sim.objects("refund")) == 1
    async with db_shop.rt.db.read() as db:
        [payment] = (await db.execute(select(Payment))).scalars()
        [row] = (await db.execute(select(Refund))).scalars()
    assert payment.account_id is None and payment.detached_at is not None
    assert (payment.status, payment.amount, payment.amount_refunded) == ("paid", 1000, 1000)
    assert payment.credits == 0 and payment.top_up_id == top_up_id
    assert payment.stripe_payment_intent_id == refund["payment_intent"]
    assert payment.receipt_url is None and payment.stripe_customer_id is None
    assert (row.id, row.payment_id, row.amount) == (refund["id"], payment.id, 1000)
    assert (row.requested_by, row.credits) == ("gateway", 0)

    admin, _ = await signed_in_admin(db_shop, browsers)
    page = await admin.get("/admin/billing")
    assert "paid after the account was deleted: refunded" in page.text
    assert "deleted account" in page.text and "Refunded" in page.text

    start = db_shop.rt.now()
    db_shop.rt.clock = lambda: start + 29 * 86_400
    assert (await purge_once(db_shop.rt)).deleted_top_ups == 0
    db_shop.rt.clock = lambda: start + 31 * 86_400
    assert (await purge_once(db_shop.rt)).deleted_top_ups == 1
    assert await _tombstones(db_shop) == []
    async with db_shop.rt.db.read() as db:  # the payment stays (7 years)
        assert (await db.execute(select(Payment.id))).scalars().all() == [payment.id]


async def test_a_bank_debit_settling_after_the_deletion_is_refunded(shop, browsers, sim):
    """A SEPA debit processing when the account was deleted (its pending payment detached
    with the account) succeeds days later: refunded in full, the record says paid and
    refunded, no account."""
    browser, email = await _person(shop, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"], pay_later=True)
    await _apply_all(shop, sim)
    assert (await _outcomes(shop))["checkout.session.completed"] == "pending"
    await _delete_account(browser, email)
    assert len(await _tombstones(shop)) == 1

    sim.settle_session(session["id"], succeeded=True)
    await _apply_all(shop, sim)
    [refund] = sim.objects("refund")
    assert refund["amount"] == 1000
    assert "account_deleted" in (await _outcomes(shop)).values()
    async with shop.rt.db.read() as db:
        [payment] = (await db.execute(select(Payment))).scalars()
    assert payment.account_id is None and payment.status == "paid"
    assert (payment.amount_refunded, payment.credits) == (1000, 0)


async def test_a_dashboard_refund_before_it_waits_and_the_rest_is_refunded(shop, browsers, sim):
    """Part of it refunded from Stripe's dashboard before its payment's event was applied: the
    refund's event waits for the payment (it is ours: a tombstone), the payment's event refunds
    what is left, and both refunds are on record."""
    from reapi_server.models import Refund, StripeEvent

    browser, email = await _person(shop, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    await _delete_account(browser, email)
    charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]["latest_charge"]
    sim.refund(charge, amount=100)
    refunded = sim.last_event("charge.refunded")["id"]
    await _apply_all(shop, sim, first=refunded)
    assert sorted(r["amount"] for r in sim.objects("refund")) == [100, 900]
    async with shop.rt.db.read() as db:
        event = await db.get(StripeEvent, refunded)
        assert event.handled_at is None and event.last_error == "waiting"
    await shop.rt.billing.retry_due()  # woken by the payment's record
    async with shop.rt.db.read() as db:
        event = await db.get(StripeEvent, refunded)
        [payment] = (await db.execute(select(Payment))).scalars()
        rows = (await db.execute(select(Refund))).scalars().all()
    assert event.handled_at is not None
    assert payment.account_id is None and payment.amount_refunded == 1000
    assert sorted((r.amount, r.requested_by) for r in rows) == [(100, "stripe"), (900, "gateway")]


async def test_a_failing_refund_keeps_the_event_for_a_retry(shop, browsers, sim, monkeypatch):
    """Stripe refuses or cannot be reached for the refund: the event is not applied (nothing
    recorded), stays listed as not applied with its error, and its retry refunds it."""
    from tests.web.staff import signed_in_admin

    from reapi_server.billing.stripe_api import BillingUnavailable
    from reapi_server.models import StripeEvent

    browser, email = await _person(shop, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    await _delete_account(browser, email)
    api = shop.rt.billing.api
    refund = api.create_refund

    async def unavailable(**_: object) -> None:
        raise BillingUnavailable("the payment provider answered 500")

    monkeypatch.setattr(api, "create_refund", unavailable)
    completed = sim.last_event("checkout.session.completed")["id"]
    with pytest.raises(BillingUnavailable):
        await _apply_all(shop, sim, first=completed)
    async with shop.rt.db.read() as db:
        event = await db.get(StripeEvent, completed)
        assert event.handled_at is None and event.last_error == "BillingUnavailable"
        assert event.next_attempt_at is not None and event.given_up_at is None
        assert (await db.execute(select(Payment))).first() is None
    admin, _ = await signed_in_admin(shop, browsers)
    page = await admin.get("/admin/billing?events=unhandled")
    assert completed in page.text and "BillingUnavailable" in page.text

    monkeypatch.setattr(api, "create_refund", refund)
    applied = await shop.rt.billing.apply(completed)  # what the retry loop does when due
    assert (applied.state, applied.outcome) == ("applied", "account_deleted")
    assert [r["amount"] for r in sim.objects("refund")] == [1000]


async def test_another_integration_s_payment_stays_not_ours(shop, sim):
    """A payment on the same Stripe account for a top-up id that was never ours is neither
    refunded nor recorded: `not_ours`, as before."""
    api = shop.rt.billing.api
    metadata = {"top_up_id": "tu_elsewhere"}
    made = await api.create_checkout_session(
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 700,
                        "product_data": {"name": "Another shop's product"},
                    },
                }
            ],
            "client_reference_id": "tu_elsewhere",
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": "http://elsewhere.test/done",
        },
        idempotency_key="elsewhere",
    )
    sim.complete_session(made["id"])
    await _apply_all(shop, sim)
    outcomes = await _outcomes(shop)
    assert outcomes["checkout.session.completed"] == "not_ours"
    assert outcomes["payment_intent.succeeded"] == "not_ours"
    assert sim.objects("refund") == []
    async with shop.rt.db.read() as db:
        assert (await db.execute(select(Payment))).first() is None


async def test_an_admin_refunds_half_and_applies_a_waiting_event(shop, browsers, sim):
    from tests.web.staff import signed_in_admin

    from reapi_server.models import AuditEntry, StripeEvent

    buyer, _ = await _person(shop, browsers)
    await buyer.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]["latest_charge"]
    sim.refund(charge, amount=100)  # from Stripe's dashboard, before the purchase is applied
    refunded = sim.last_event("charge.refunded")
    await _apply_all(shop, sim, first=refunded["id"])  # it waits: nothing to refund yet

    admin, _ = await signed_in_admin(shop, browsers)
    page = await admin.get("/admin/billing")
    assert page.status_code == 200
    assert "1 not applied" in page.text and refunded["id"] in page.text
    applied = await admin.submit(
        "/admin/billing", f"/admin/billing/events/{refunded['id']}/apply", {}
    )
    assert applied.status_code == 303 and "done=applied" in applied.headers["location"]
    async with shop.rt.db.read() as db:
        assert (await db.get(StripeEvent, refunded["id"])).handled_at is not None

    page = await admin.get("/admin/billing")
    [payment_id] = set(re.findall(r"/admin/billing/payments/(pay_\w+)/refund", page.text))
    too_much = await admin.submit(
        "/admin/billing", f"/admin/billing/payments/{payment_id}/refund", {"amount": "20"}
    )
    assert too_much.status_code == 400 and "at most 9.00 EUR" in too_much.text
    done = await admin.submit(
        "/admin/billing", f"/admin/billing/payments/{payment_id}/refund", {"amount": "4.00"}
    )
    assert done.status_code == 303
    assert [r["amount"] for r in sim.objects("refund")] == [100, 400]
    history = await buyer.get("/dashboard/billing/history")
    assert history.text.count("Refund:") == 2
    billing = await buyer.get("/dashboard/billing")
    assert ">500<" in billing.text.replace(",", "")  # 1,000 - 100 - 400 credits
    async with shop.rt.db.read() as db:
        actions = [row.action for row in (await db.execute(select(AuditEntry))).scalars()]
    assert "payment.refund" in actions and "stripe_event.apply" in actions


async def test_a_stripe_key_and_packs_without_a_webhook_secret_is_billing_off(
    make_gateway, sim, browsers
):
    """Nothing is sold that could never be credited: no secret, no checkout, no endpoint."""
    gateway = await make_gateway(
        public_base_url="http://gateway.test", billing=_billing(sim, stripe_webhook_secrets=[])
    )
    browser, _ = await _person(gateway, browsers)
    page = await browser.get("/dashboard/billing")
    assert "Billing is off" in page.text and "Continue to payment" not in page.text
    refused = await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"}
    )
    assert refused.status_code == 409 and sim.objects("checkout.session") == []
    webhook = await gateway.client.post(
        "/billing/stripe/webhook",
        content=b'{"id": "evt_1", "type": "checkout.session.completed"}',
        headers={"stripe-signature": "t=1,v1=" + "0" * 64, "content-type": "application/json"},
    )
    assert webhook.status_code == 404


async def test_the_next_purchase_reuses_the_customer_and_stripe_tax_is_asked_for(
    make_gateway, sim, browsers
):
    gateway = await make_gateway(
        public_base_url="http://gateway.test",
        billing=_billing(sim, automatic_tax=True, tax_id_collection=True),
    )
    browser, email = await _person(gateway, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [first] = sim.objects("checkout.session")
    assert first["automatic_tax"]["enabled"] is True
    assert first["tax_id_collection"]["enabled"] is True
    assert first["customer_email"] == email and first["customer_creation"] == "always"
    sim.complete_session(first["id"])
    await _apply_all(gateway, sim)
    customer = sim.get(first["id"])["customer"]
    assert customer and customer.startswith("cus_")
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "large"})
    second = sim.objects("checkout.session")[-1]
    assert second["id"] != first["id"] and second["customer"] == customer
    assert len(sim.objects("customer")) == 1


async def test_the_history_covers_the_account_s_whole_life(shop, browsers):
    from tests.web.staff import account_id_of

    from reapi_server.billing import repository as payments

    browser, email = await _person(shop, browsers)
    account = await account_id_of(shop, email)
    years_ago = shop.rt.now() - 3 * 365 * 86_400
    async with shop.rt.db.write() as session:
        await payments.insert(
            session,
            account_id=account,
            product="Launch pack",
            credits=2500,
            amount=2000,
            currency="eur",
            status="paid",
            now=years_ago,
        )
    history = await browser.get("/dashboard/billing/history")
    assert "Launch pack" in history.text and "20.00 EUR" in history.text
    rows = list(
        csv.DictReader(io.StringIO((await browser.get("/dashboard/billing/history.csv")).text))
    )
    assert [row["product"] for row in rows] == ["Launch pack"]


async def test_starting_checkouts_is_limited_per_account_and_per_address(
    make_gateway, sim, browsers
):
    """Each Checkout Session is a Stripe API call: a signed-in person (or a stolen session)
    cannot make them in a loop. Past the limit the billing page says to wait (429), and Stripe
    is not asked."""
    settings = _billing(sim, checkout_limit=2, checkout_limit_per_address=3)
    gateway = await make_gateway(public_base_url="http://gateway.test", billing=settings)
    browser, _ = await _person(gateway, browsers)

    async def buy(who):
        return await who.submit(
            "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"}
        )

    assert [(await buy(browser)).status_code for _ in range(2)] == [303, 303]
    refused = await buy(browser)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Too many payments were started" in refused.text
    assert "<h1>Billing</h1>" in refused.text
    assert len(sim.objects("checkout.session")) == 2
    # Another account from the same address: its own first, then the address's limit.
    other, _ = await _person(gateway, browsers)
    assert (await buy(other)).status_code == 303
    assert (await buy(other)).status_code == 429
    assert len(sim.objects("checkout.session")) == 3
    # An hour later the account may buy again.
    start = gateway.rt.now()
    gateway.rt.clock = lambda: start + 3601
    assert (await buy(browser)).status_code == 303


async def test_the_success_page_s_wait_is_limited_per_account(make_gateway, sim, browsers):
    """Each success page of a payment not confirmed yet holds the request open while it waits
    for the webhook: past the limit it answers at once (429), says why, and stops refreshing."""
    settings = _billing(sim, success_wait_limit=2, success_wait_seconds=0.2)
    gateway = await make_gateway(public_base_url="http://gateway.test", billing=settings)
    browser, _ = await _person(gateway, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    page = f"/dashboard/billing/success?top_up={session['client_reference_id']}"
    for _ in range(2):
        late = await browser.get(page)
        assert late.status_code == 200 and 'http-equiv="refresh"' in late.text
    stopped = await browser.get(page)
    assert stopped.status_code == 429 and int(stopped.headers["retry-after"]) > 0
    assert 'http-equiv="refresh"' not in stopped.text
    assert "stopped checking" in stopped.text
    # Once paid, the page waits for nothing and counts nothing: it says so at once.
    sim.complete_session(session["id"])
    await _apply_all(gateway, sim)
    paid = await browser.get(page)
    assert paid.status_code == 200 and "Payment received" in paid.text


async def _rows_holding(gateway, needles: list[str]) -> dict[str, list[str]]:
    """Every table's columns (by `table.column`) whose text holds one of `needles`."""
    from reapi_server.models.base import Base

    found: dict[str, list[str]] = {}
    async with gateway.rt.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    if isinstance(value, str) and any(needle in value for needle in needles):
                        found.setdefault(f"{table.name}.{column}", []).append(value)
    return found


async def test_a_deleted_account_s_payments_keep_no_hosted_invoice_or_receipt_links(
    database_url, make_gateway, sim, browsers
):
    """Stripe's hosted invoice page, its PDF and the charge's receipt page show the buyer's name,
    email and card to whoever has the link: kept seven years with a detached payment, they
    would outlive the account they belong to. Only the invoice's id and number stay."""
    gateway = await make_gateway(
        database_url=database_url, public_base_url="http://gateway.test", billing=_billing(sim)
    )
    browser, email = await _person(gateway, browsers)
    await browser.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]["latest_charge"]
    sim.refund(charge, amount=300)
    await _apply_all(gateway, sim)
    async with gateway.rt.db.read() as db_session:
        [payment] = (await db_session.execute(select(Payment))).scalars()
    links = [payment.invoice_url, payment.invoice_pdf_url, payment.receipt_url]
    assert all(links) and payment.invoice_number, links
    assert await _rows_holding(gateway, links)  # what the next check looks for is there

    async with gateway.rt.db.read() as db_session:
        [top_up] = (await db_session.execute(select(TopUp))).scalars()
    account_id = top_up.account_id
    assert await _rows_holding(gateway, [f"checkout_acct:{account_id}"])  # its checkout count

    deleted = await browser.submit(
        "/settings/delete",
        "/settings/delete",
        {"current_password": PASSWORD, "confirmation": email},
    )
    assert deleted.status_code == 303, deleted.text
    # The account's billing limits' counts go with it.
    assert await _rows_holding(gateway, [f"_acct:{account_id}"]) == {}

    # Nowhere in the database: not the payment, its refund, the outbox, any table.
    assert await _rows_holding(gateway, [*links, sim.base_url]) == {}
    async with gateway.rt.db.read() as db_session:
        kept = await db_session.get(Payment, payment.id)
    assert kept is not None and kept.account_id is None and kept.detached_at is not None
    assert (kept.invoice_id, kept.invoice_number) == (payment.invoice_id, payment.invoice_number)
    assert (kept.amount, kept.amount_refunded, kept.stripe_charge_id) == (1000, 300, charge)


async def test_the_admin_sees_an_event_given_up_and_may_still_apply_it(make_gateway, sim, browsers):
    from tests.web.staff import signed_in_admin

    gateway = await make_gateway(
        public_base_url="http://gateway.test", billing=_billing(sim, event_give_up_after=0.5)
    )
    buyer, _ = await _person(gateway, browsers)
    await buyer.submit("/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter"})
    [session] = sim.objects("checkout.session")
    sim.complete_session(session["id"])
    charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]["latest_charge"]
    sim.refund(charge, amount=100)
    refunded = sim.last_event("charge.refunded")["id"]
    async with gateway.rt.db.write() as db:
        await event_store.store(
            db,
            event_id=refunded,
            type_="charge.refunded",
            object_id=charge,
            created=float(sim.now()),
            now=gateway.rt.now(),
        )
    assert (await gateway.rt.billing.apply(refunded)).state == "waiting"  # and given up

    admin, _ = await signed_in_admin(gateway, browsers)
    page = await admin.get("/admin/billing?events=unhandled")
    assert "given up" in page.text and "1 not applied" in page.text
    assert "Apply now" in page.text
    still = await admin.submit("/admin/billing", f"/admin/billing/events/{refunded}/apply", {})
    assert "done=waiting" in still.headers["location"]
    await _apply_all(gateway, sim)  # the purchase: its refund is applied after it
    page = await admin.get("/admin/billing?events=unhandled")
    assert "Every stored event is applied" in page.text


async def test_a_deletion_that_cannot_reach_stripe_keeps_the_card_until_the_next_pass(
    shop, browsers, sim
):
    """Stripe out of reach while the account is deleted: its card is still on the customer, so
    the billing profile naming it (and the closed account) wait for the sweeper, which takes
    the card off once Stripe answers, then removes them."""
    from reapi.testing import Fault
    from reapi_server.accounts.closing import purge_deleted_accounts
    from reapi_server.models import Account, BillingProfile

    browser, email = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    sim.server.faults.set(Fault.ERROR_503)  # every call the gateway makes
    await _delete_account(browser, email)
    sim.server.faults.clear()
    [card] = sim.objects("payment_method")
    assert card["customer"] is not None  # still chargeable at Stripe: not forgotten here
    async with shop.rt.db.read() as session:
        assert (await session.execute(select(BillingProfile))).scalars().all()

    assert await purge_deleted_accounts(shop.rt) == 1
    [card] = sim.objects("payment_method")
    assert card["customer"] is None
    assert sim.objects("customer") == []  # deleted there (with the address it held)
    async with shop.rt.db.read() as session:
        assert not (await session.execute(select(BillingProfile))).scalars().all()
        assert not (await session.execute(select(Account))).scalars().all()


async def test_a_deletion_stripe_keeps_refusing_gives_up_on_the_card_after_a_while(
    shop, browsers, sim, caplog
):
    """A key Stripe answers 401 to (rotated away at Stripe, still configured here) never lets
    the card be detached: the closed account waits `DETACH_DAYS`, then goes all the same
    (logged for the operator), rather than stay for ever and hold up the deletions after it."""
    from sqlalchemy import update

    from reapi_server.accounts.closing import purge_deleted_accounts
    from reapi_server.billing.saved_card import DETACH_DAYS
    from reapi_server.models import Account, BillingProfile

    browser, email = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    sim.api.secret_key = "sk_test_rotated"  # every call the gateway makes: 401
    await _delete_account(browser, email)

    async def closed_days_ago(days: float) -> None:
        async with shop.rt.db.write() as session:
            await session.execute(update(Account).values(deleted_at=shop.rt.now() - days * 86_400))

    await closed_days_ago(DETACH_DAYS - 1)
    assert await purge_deleted_accounts(shop.rt) == 0  # still waiting for Stripe
    async with shop.rt.db.read() as session:
        assert (await session.execute(select(BillingProfile))).scalars().all()

    await closed_days_ago(DETACH_DAYS + 1)
    assert await purge_deleted_accounts(shop.rt) == 1
    async with shop.rt.db.read() as session:
        assert not (await session.execute(select(BillingProfile))).scalars().all()
        assert not (await session.execute(select(Account))).scalars().all()
    assert "saved card given up on" in caplog.messages


async def _buy_saving_card(gateway, browser, sim) -> None:
    """A purchase with "save this card" ticked, paid: its card is on the Stripe customer (one
    more each time: a newer card does not take the older off)."""
    await browser.submit(
        "/dashboard/billing", "/dashboard/billing/checkout", {"pack": "starter", "save_card": "yes"}
    )
    newest = [s for s in sim.objects("checkout.session") if s["status"] == "open"]
    sim.complete_session(newest[-1]["id"])
    await _apply_all(gateway, sim)


async def test_removing_the_card_takes_an_older_saved_card_off_too(shop, browsers, sim):
    """Each purchase that saves a card attaches it to the customer without taking the older
    one off: "Remove card" leaves none of them chargeable."""
    browser, _ = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    await _buy_saving_card(shop, browser, sim)
    cards = sim.objects("payment_method")
    assert len(cards) == 2 and all(card["customer"] is not None for card in cards)
    removed = await browser.submit("/dashboard/billing", "/dashboard/billing/card/remove", {})
    assert removed.headers["location"] == "/dashboard/billing?done=card_removed#auto-top-up"
    assert [card["customer"] for card in sim.objects("payment_method")] == [None, None]
    assert (await _profile(shop)).payment_method_id is None


async def test_deleting_the_account_takes_every_saved_card_off(shop, browsers, sim):
    browser, email = await _person(shop, browsers)
    await _saved_card(shop, browser, sim)
    await _buy_saving_card(shop, browser, sim)
    assert len(sim.objects("payment_method")) == 2
    await _delete_account(browser, email)
    assert [card["customer"] for card in sim.objects("payment_method")] == [None, None]


async def test_the_models_page_says_what_credits_cost(shop, web, browsers):
    """Prices are in credits; a visitor comparing them with another gateway's needs money, so
    the models page names the packs on sale (the billing page is behind sign-in)."""
    page = (await browsers(shop).get("/models")).text
    assert (
        "Credits come in packs: 1,000 credits for 10.00 EUR, 10,000 credits for 90.00 EUR, "
        "1,000 credits for 11.00 USD."
    ) in page
    assert 'href="/dashboard/billing"' in page
    # A gateway that sells no credits says nothing about packs.
    assert "Credits come in packs" not in (await browsers(web).get("/models")).text


async def test_the_landing_pages_steps_say_to_buy_credits_where_they_are_sold(shop, web, browsers):
    """A new account has no credits, so its first request is refused: the steps on the
    landing page say where to buy them, on a gateway that sells them."""
    steps = re.search(r'<ol class="steps">.*?</ol>', (await browsers(shop).get("/")).text, re.S)
    assert "buy credits" in steps.group(0) and 'href="/dashboard/billing"' in steps.group(0)
    free = re.search(r'<ol class="steps">.*?</ol>', (await browsers(web).get("/")).text, re.S)
    assert "buy credits" not in free.group(0) and "/dashboard/billing" not in free.group(0)
