"""A person buys credits in a real browser (Debian's Chromium): sign up and verify, choose a pack
on Dashboard → Billing, pay on the Stripe simulator's hosted checkout page, come back to the
success page; the balance is up, the receipt is in <data_dir>/mail/, the invoice is linked from
the history. Then the operator refunds half on Admin → Billing: the balance goes down and the
history shows the refund. Screenshots of the billing pages at 1280 and 390 wide go to
test-artifacts/billing/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from tests.server.billing_live import PACKS, SECRET
from tests.web.browser import (
    ARTIFACTS,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.helpers import read_mail
from tests.web.live import LiveWeb, live_web_server

from reapi_server.audit import Actor
from reapi_server.backoffice import actions
from reapi_server.billing.settings import BillingSettings
from reapi_server.db import Database
from reapi_server.identity import repository as users
from reapi_server.testing.stripe_sim import StripeSimulator

pytestmark = pytest.mark.browser

PASSWORD = "amber orchard whistle 2044"
SHOTS = ARTIFACTS / "billing"
WIDTHS = {"desktop": 1280, "phone": 390}


@dataclass
class Shop:
    sim: StripeSimulator
    live: LiveWeb


@contextmanager
def shop(tmp_path, template, *, tax_percent: float = 0.0, **overrides: Any) -> Iterator[Shop]:
    with StripeSimulator(retry_delays=(0.2, 0.4, 0.8), tax_percent=tax_percent) as sim:
        billing = BillingSettings(
            stripe_secret_key=SecretStr(sim.secret_key),
            stripe_webhook_secrets=[SecretStr(SECRET)],
            stripe_api_base=sim.base_url,
            packs=PACKS,
            event_retry_interval=0.2,
            automatic_tax=tax_percent > 0,
            **overrides,
        )
        with live_web_server(tmp_path / "data", template, billing=billing) as live:
            sim.add_webhook_endpoint(f"{live.base_url}/billing/stripe/webhook", SECRET)
            yield Shop(sim, live)


def _in_thread(coroutine: Any) -> Any:
    """Run a coroutine beside Playwright's own event loop."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def _promote(live: LiveWeb, email: str) -> None:
    db = Database(live.runtime.settings.resolved_database_url)
    try:
        async with db.write() as session:
            user = await users.find_user_by_email(session, email)
            assert await actions.promote_user(session, Actor.cli(), user.id, now=time.time())
    finally:
        await db.dispose()


def _sign_up(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("I am 16 or older").check()
    page.locator("#f-accept_terms").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*done=welcome"))


def _wait_for_mail(live: LiveWeb, to: str, subject: str) -> Any:
    deadline = time.monotonic() + 15
    while True:
        found = [m for m in read_mail(live.mail_dir) if m.to == to and subject in m.subject]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no mail {subject!r}"
        time.sleep(0.1)


def _shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _shoot_widths(browser: Any, storage: Any, url: str, name: str) -> None:
    for label, width in WIDTHS.items():
        context = browser.new_context(
            viewport={"width": width, "height": 900}, storage_state=storage
        )
        page = context.new_page()
        page.goto(url)
        _shoot(page, f"{name}-{label}")
        if label == "phone":  # what a phone shows first, at its own size
            page.screenshot(path=str(SHOTS / f"{name}-{label}-first-screen.png"))
        context.close()


def test_buy_a_pack_then_the_operator_refunds_half(chromium, tmp_path, migrated_template):  # noqa: F811
    email = "grace@example.com"
    with shop(tmp_path, migrated_template) as found:
        base, sim, live = found.live.base_url, found.sim, found.live
        context, page = _verified(chromium, live, base, email)

        page.goto(f"{base}/dashboard/billing")
        page.get_by_label(re.compile("10,000 credits")).check()
        page.get_by_label("Save this card for automatic top-up").check()
        page.get_by_role("button", name="Continue to payment").click()
        page.wait_for_url(re.compile(re.escape(sim.base_url) + "/c/pay/.*"))
        _shoot(page, "checkout-simulator")
        page.get_by_label(re.compile("Email")).fill(email)
        page.get_by_role("button", name=re.compile("^Pay")).click()
        page.wait_for_url(re.compile(re.escape(base) + "/dashboard/billing/success.*"))
        page.get_by_role("heading", name="Payment received").wait_for(timeout=15_000)
        success_url = page.url
        assert "10,000 credits" in page.inner_text("main")

        receipt = _wait_for_mail(live, email, "receipt")
        assert "/invoice/" in receipt.text and "10,000" in receipt.text
        page.goto(f"{base}/dashboard/billing")
        assert "10,000" in page.inner_text(".stats")
        assert "Visa •••• 4242" in page.inner_text("#auto-top-up")
        page.goto(f"{base}/dashboard/billing/history")
        invoice = page.get_by_role("link", name="Invoice").first
        assert invoice.get_attribute("href").startswith(sim.base_url + "/invoice/")
        storage = context.storage_state()
        _shoot_widths(chromium, storage, success_url, "success")

        # The operator refunds half from the admin pages.
        operator, admin = _operator(chromium, live, base)
        admin.goto(f"{base}/admin/billing")
        row = admin.locator("tr", has_text=email)
        row.get_by_label(re.compile("Amount to refund")).fill("45")
        row.get_by_role("button", name="Refund").click()
        admin.wait_for_url(re.compile(r".*/admin/billing\?done=refunded.*"))
        assert "Refunded through Stripe" in admin.inner_text("main")
        assert "45.00 EUR refunded" in admin.inner_text("#payments")
        [refund] = sim.objects("refund")
        assert refund["amount"] == 4500
        _shoot_widths(chromium, operator.storage_state(), f"{base}/admin/billing", "admin")
        page.reload()
        history = page.inner_text("main")
        assert "Refund: 10,000 credits" in history and "-5,000" in history
        assert "Partly refunded" in history
        page.goto(f"{base}/dashboard/billing")
        assert "5,000" in page.inner_text(".stats")
        _shoot_widths(chromium, storage, f"{base}/dashboard/billing", "billing")
        _shoot_widths(chromium, storage, f"{base}/dashboard/billing/history", "history")
        # Leaving Checkout without paying: the cancel page.
        page.goto(f"{base}/dashboard/billing")
        page.get_by_role("button", name="Continue to payment").click()
        page.wait_for_url(re.compile(re.escape(sim.base_url) + "/c/pay/.*"))
        cancel_url = sim.objects("checkout.session")[-1]["cancel_url"]
        page.goto(cancel_url)  # where Checkout's "back" link leads
        assert "nothing was charged" in page.inner_text("main")
        _shoot_widths(chromium, storage, cancel_url, "cancel")
        context.close()


async def _change_top_up_price(live: LiveWeb, session_id: str, amount: int) -> None:
    """What our side asked for a checkout differs from what the buyer pays (as when a session
    was tampered with): the payment must be held for review."""
    from reapi_server.models import TopUp

    db = Database(live.runtime.settings.resolved_database_url)
    try:
        async with db.write() as session:
            [top_up] = (
                (
                    await session.execute(
                        select(TopUp).where(TopUp.stripe_checkout_session_id == session_id)
                    )
                )
                .scalars()
                .all()
            )
            top_up.amount = amount
    finally:
        await db.dispose()


def test_tax_on_top_and_a_payment_under_review_in_the_history(
    chromium,  # noqa: F811
    tmp_path,
    migrated_template,
):
    email = "tax@example.com"
    with shop(tmp_path, migrated_template, tax_percent=20) as found:
        base, sim, live = found.live.base_url, found.sim, found.live
        context, page = _verified(chromium, live, base, email)
        for mismatch in (False, True):
            page.goto(f"{base}/dashboard/billing")
            page.get_by_label(re.compile("1,000 credits")).first.check()
            page.get_by_role("button", name="Continue to payment").click()
            page.wait_for_url(re.compile(re.escape(sim.base_url) + "/c/pay/.*"))
            if mismatch:
                session_id = sim.objects("checkout.session")[-1]["id"]
                _in_thread(_change_top_up_price(live, session_id, 900))
            page.get_by_label(re.compile("Email")).fill(email)
            page.get_by_role("button", name=re.compile("^Pay")).click()
            page.wait_for_url(re.compile(re.escape(base) + "/dashboard/billing/success.*"))
        sim.wait_idle()
        page.goto(f"{base}/dashboard/billing/history")
        history = page.inner_text("main")
        assert "10.00 EUR plus 2.00 EUR tax" in history and "12.00 EUR" in history
        assert "Under review" in history and "not credited" in history
        _shoot_widths(chromium, context.storage_state(), page.url, "history-tax-review")

        operator, admin = _operator(chromium, live, base)
        admin.goto(f"{base}/admin/billing")
        assert "Under review: not credited" in admin.inner_text("#payments")
        _shoot_widths(chromium, operator.storage_state(), f"{base}/admin/billing", "admin-review")
        context.close()
        operator.close()


def test_the_billing_page_with_billing_off_and_unverified(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        _sign_up(page, live.base_url, "lin@example.com")
        page.goto(f"{live.base_url}/dashboard/billing")
        assert "Billing is off" in page.inner_text("main")
        _shoot_widths(chromium, context.storage_state(), page.url, "billing-off")
        context.close()


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/settings.*|.*/dashboard.*"))


def test_limits_and_refusals_as_a_person_and_the_operator_see_them(
    chromium,  # noqa: F811
    tmp_path,
    migrated_template,
):
    """Too many payments started (429 on the billing page), a success page that stopped
    checking, a promotion code refused, and an event given up in Admin → Billing."""
    email = "ines@example.com"
    limits = {
        "checkout_limit": 1,
        "success_wait_limit": 1,
        "success_wait_seconds": 0.2,
        "event_give_up_after": 0.5,
    }
    with shop(tmp_path, migrated_template, **limits) as found:
        base, sim, live = found.live.base_url, found.sim, found.live
        context, page = _verified(chromium, live, base, email)

        page.goto(f"{base}/dashboard/billing")
        page.get_by_role("button", name="Continue to payment").click()
        page.wait_for_url(re.compile(re.escape(sim.base_url) + "/c/pay/.*"))
        [session] = sim.objects("checkout.session")
        page.goto(f"{base}/dashboard/billing")
        page.get_by_role("button", name="Continue to payment").click()
        page.wait_for_load_state()
        assert "Too many payments were started" in page.inner_text("main")
        assert len(sim.objects("checkout.session")) == 1
        storage = context.storage_state()

        # Paid, but Stripe's word is late (its completion held); a refund arrives first.
        sim.hold_events()
        sim.complete_session(session["id"])
        charge = sim.get(session["id"], expand=["payment_intent"])["payment_intent"]
        sim.refund(charge["latest_charge"], amount=300)
        refunded = sim.last_event("charge.refunded")["id"]
        sim.hold_events(False)
        for delivery in sim.release_events([refunded]):
            delivery.wait()
        page.goto(session["success_url"])  # waits once
        assert "being confirmed" in page.inner_text("main")
        page.goto(session["success_url"])
        assert "stopped checking" in page.inner_text("main")
        _shoot_widths(chromium, storage, session["success_url"], "success-stopped")

        page.goto(f"{base}/dashboard/billing")
        page.get_by_label("Code", exact=True).fill("NO-SUCH-CODE")
        page.get_by_role("button", name="Redeem").click()
        page.wait_for_load_state()
        assert "can't be redeemed" in page.inner_text("#promo")
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            _shoot(page, f"promo-refused-{label}")
        page.goto(f"{base}/dashboard/billing")
        page.get_by_role("button", name="Continue to payment").click()
        page.wait_for_load_state()
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            _shoot(page, f"billing-too-many-{label}")

        operator = chromium.new_context(viewport={"width": 1280, "height": 900})
        admin = operator.new_page()
        _sign_up(admin, base, "ops@example.com")
        _in_thread(_promote(live, "ops@example.com"))
        _sign_in(admin, base, "ops@example.com")
        admin.goto(f"{base}/admin/billing?events=unhandled")
        row = admin.locator("tr", has_text=refunded)
        assert "given up" in row.inner_text()
        _shoot_widths(
            chromium,
            operator.storage_state(),
            f"{base}/admin/billing?events=unhandled",
            "admin-given-up",
        )
        sim.release_events()  # the purchase after all: its refund is applied with it
        deadline = time.monotonic() + 15
        while "Every stored event is applied" not in admin.inner_text("#events"):
            assert time.monotonic() < deadline, admin.inner_text("#events")
            time.sleep(0.2)
            admin.reload()
        context.close()
        operator.close()


def _operator(browser, live, base: str):  # type: ignore[no-untyped-def]
    """A signed-in operator's browser context and page (signed up, promoted, signed in again)."""
    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    admin = operator.new_page()
    _sign_up(admin, base, "ops@example.com")
    _in_thread(_promote(live, "ops@example.com"))
    admin.goto(f"{base}/login")
    admin.get_by_label("Email address").fill("ops@example.com")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Sign in").click()
    admin.wait_for_url(re.compile(r".*/settings.*|.*/dashboard.*"))
    return operator, admin


def _verified(browser, live, base: str, email: str):  # type: ignore[no-untyped-def]
    """A browser context and page of a person who signed up and confirmed their email."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_up(page, base, email)
    welcome = _wait_for_mail(live, email, "Confirm your email address")
    page.goto(base + welcome.link("/verify"))
    page.get_by_role("button", name=re.compile("Verify|Confirm")).click()
    return context, page
