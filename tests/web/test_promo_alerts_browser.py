"""Promotion codes and low-balance alerts in a real browser (Debian's Chromium): an admin
creates a code on /admin/promo; a person redeems it in the billing page's Promotion code
section (a wrong code first), sets balance thresholds and a key's share in Settings →
Notifications, then a request with their key crosses a threshold and the alert arrives in the
mail directory. The same pages on a phone without JavaScript. Screenshots of every state at
1280 and 390 wide (test-artifacts/billing-extras/)."""

from __future__ import annotations

import re

import openai
import pytest
from tests.web.browser import ARTIFACTS, chromium  # noqa: F401  (fixture)
from tests.web.live import live_web_server
from tests.web.test_browser import _wait_for_mail
from tests.web.test_keys_browser import PASSWORD, _account_of, _in_thread, sign_up_verified

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

SHOTS = ARTIFACTS / "billing-extras"


def shoot(page, name: str, section: str | None = None) -> None:
    """The whole page; and the section the test is about, on its own (closer to read)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if section is not None:
        page.locator(section).screenshot(path=str(SHOTS / f"{name}-section.png"))


def _promote(live, email: str) -> None:
    from reapi_server.audit import Actor
    from reapi_server.backoffice import actions
    from reapi_server.db import Database
    from reapi_server.identity import repository as users

    async def promote() -> None:
        db = Database(live.runtime.settings.resolved_database_url)
        try:
            async with db.write() as session:
                user = await users.find_user_by_email(session, email)
                await actions.promote_user(session, Actor.cli(), user.id, now=1.0)
        finally:
            await db.dispose()

    _in_thread(promote)


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/(settings|dashboard).*"))


def test_promo_codes_and_alerts_journey(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        desktop = chromium.new_context(viewport={"width": 1280, "height": 900})

        # -- the operator --------------------------------------------------------------------
        admin = desktop.new_page()
        sign_up_verified(admin, base, live.mail_dir, "ops@example.com")
        _promote(live, "ops@example.com")
        sign_in(admin, base, "ops@example.com")
        admin.goto(f"{base}/admin/promo")
        shoot(admin, "admin-empty-desktop")
        admin.get_by_label("Code", exact=True).fill("x")
        admin.get_by_label("Credits per redemption").fill("many")
        admin.get_by_role("button", name="Create code").click()
        assert admin.locator("#f-code-error").is_visible()
        assert admin.locator("#f-credits-error").is_visible()
        shoot(admin, "admin-error-desktop")
        admin.get_by_label("Code", exact=True).fill("welcome-2030")
        admin.get_by_label("Credits per redemption").fill("500")
        admin.get_by_label("Uses in all").fill("100")
        admin.get_by_label("Expires").fill("2030-06-30")
        admin.get_by_label("Note").fill("Launch newsletter, June")
        admin.get_by_role("button", name="Create code").click()
        admin.wait_for_url(re.compile(r".*done=promo_created.*"))
        admin.get_by_label("Credits per redemption").fill("50")
        admin.get_by_role("button", name="Create code").click()  # a generated one
        admin.wait_for_url(re.compile(r".*done=promo_created.*"))
        admin.get_by_label("Code", exact=True).fill("OLD-OFFER")
        admin.get_by_label("Credits per redemption").fill("100")
        admin.get_by_role("button", name="Create code").click()
        admin.wait_for_url(re.compile(r".*done=promo_created.*"))
        admin.get_by_role("button", name="Withdraw OLD-OFFER").click()
        admin.wait_for_url(re.compile(r".*done=promo_disabled.*"))
        row = admin.locator("tr", has_text="WELCOME-2030").inner_text()
        assert "0 of 100" in row and "Active" in row
        shoot(admin, "admin-list-desktop")

        # -- a customer ------------------------------------------------------------------------
        page = desktop.new_page()
        desktop.clear_cookies()
        sign_up_verified(page, base, live.mail_dir, "ada@example.com")
        page.goto(f"{base}/dashboard/billing")
        shoot(page, "redeem-empty-desktop", "#promo")
        page.get_by_label("Code", exact=True).fill("welcome-2013")
        page.get_by_role("button", name="Redeem").click()
        assert "can't be redeemed" in page.locator("#f-promo_code-error").inner_text()
        shoot(page, "redeem-error-desktop", "#promo")
        page.get_by_label("Code", exact=True).fill("welcome-2030")
        page.get_by_role("button", name="Redeem").click()
        page.wait_for_url(re.compile(r".*done=promo_redeemed.*"))
        assert "+500 credits" in page.locator(".promo-redeemed").inner_text()
        assert "its credits are in your balance" in page.locator(".notice").inner_text()
        shoot(page, "redeem-done-desktop", "#promo")

        page.goto(f"{base}/dashboard/keys")
        page.get_by_label("Name", exact=True).fill("production")
        page.get_by_label("Spend limit").fill("200")
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#new-key-secret").inner_text().strip()
        page.goto(f"{base}/dashboard/keys")
        page.get_by_label("Name", exact=True).fill("scratch")
        page.get_by_role("button", name="Create key").click()

        page.goto(f"{base}/settings#notifications")
        page.get_by_label("Email me when my balance falls below").fill("1,000, 470")
        page.get_by_role("button", name="Save balance alerts").click()
        page.wait_for_url(re.compile(r".*done=alerts_saved.*"))
        page.get_by_label("production").fill("150")
        page.get_by_role("button", name="Save key alerts").click()
        assert page.locator("[id^='f-percent-'][id$='-error']").is_visible()
        page.locator("#notifications").scroll_into_view_if_needed()
        shoot(page, "alerts-error-desktop", "#notifications")
        page.get_by_label("production").fill("75")
        page.get_by_role("button", name="Save key alerts").click()
        page.wait_for_url(re.compile(r".*done=key_alerts_saved.*"))
        notifications = page.locator("#notifications").inner_text()
        assert "1,000 credits" in notifications and "470 credits" in notifications
        assert "email at 150" in notifications
        shoot(page, "alerts-desktop", "#notifications")

        client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
        client.images.generate(model="gpt-image-2", prompt="a lighthouse")  # 500 → 460
        client.close()
        text = _wait_for_mail(live.mail_dir, "ada@example.com", "balance is below 470")
        assert "now 460 credits" in text

        # -- a phone without JavaScript ----------------------------------------------------------
        phone = chromium.new_context(
            viewport={"width": 390, "height": 844}, java_script_enabled=False
        )
        small = phone.new_page()
        sign_in(small, base, "ada@example.com")
        small.goto(f"{base}/dashboard/billing")
        shoot(small, "redeem-phone", "#promo")
        small.get_by_label("Code", exact=True).fill("OLD-OFFER")
        small.get_by_role("button", name="Redeem").click()
        assert "can't be redeemed" in small.locator("#f-promo_code-error").inner_text()
        shoot(small, "redeem-error-phone", "#promo")
        small.goto(f"{base}/settings")
        small.locator("#notifications").scroll_into_view_if_needed()
        shoot(small, "alerts-phone", "#notifications")
        small.get_by_label("Email me when my balance falls below").fill("lots")
        small.get_by_role("button", name="Save balance alerts").click()
        assert small.locator("#f-thresholds-error").is_visible()
        shoot(small, "alerts-error-phone", "#notifications")
        phone.close()

        phone_admin = chromium.new_context(viewport={"width": 390, "height": 844})
        small_admin = phone_admin.new_page()
        sign_in(small_admin, base, "ops@example.com")
        small_admin.goto(f"{base}/admin/promo")
        shoot(small_admin, "admin-list-phone", ".promo-table")
        phone_admin.close()
        desktop.close()
        assert _account_of(live, "ada@example.com")
