"""The site in a real browser (Debian's Chromium) with JavaScript off: the phone menu opens and
leads to every public page, the skip link is the first stop of the keyboard, and an admin finds
an account, adjusts its credits and disables it (its key then answers 403). Screenshots of every
page at desktop and phone widths go to test-artifacts/site/."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.web.browser import (
    ARTIFACTS,
    SIDEWAYS_CODE,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.live import live_web_server

from reapi_server.api_keys.service import issue_key
from reapi_server.audit import Actor
from reapi_server.backoffice import actions
from reapi_server.db import Database
from reapi_server.identity import repository as users

pytestmark = pytest.mark.browser

PASSWORD = "amber quarry whistle 1942"
SHOTS = ARTIFACTS / "site"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PUBLIC = ["/", "/models", "/status", "/changelog", "/contact", "/legal/privacy", "/login"]


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_up(page, base: str, email: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("I am 16 or older").check()
    page.locator("#f-accept_terms").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/settings?done=welcome")


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/settings")


async def _promote_and_key(url: str, admin: str, customer: str) -> tuple[str, str]:
    """Promote `admin` (as `reapi-server users promote` does); a key for `customer`."""
    db = Database(url)
    try:
        async with db.write() as session:
            admin_user = await users.find_user_by_email(session, admin)
            await actions.promote_user(session, Actor.cli(), admin_user.id, now=1.0)
            customer_user = await users.find_user_by_email(session, customer)
            from reapi_server.accounts.service import account_of

            account = await account_of(session, customer_user.id)
            _, issued = await issue_key(session, account.id, now=1.0)
            return account.id, issued.plaintext
    finally:
        await db.dispose()


def test_the_site_without_javascript_and_an_admins_round(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        for label, viewport in WIDTHS.items():
            context = chromium.new_context(viewport=viewport, java_script_enabled=False)
            page = context.new_page()
            for path in PUBLIC:
                page.goto(base + path)
                name = path.strip("/").replace("/", "-") or "landing"
                _shoot(page, f"{name}-{label}")
                assert page.evaluate(SIDEWAYS_CODE) == 0, f"{path}: a code window scrolls"
                # A long identifier in the changelog's text made the whole page scroll sideways.
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{path} is {overflow}px wider than a {label} screen"
            context.close()

        # On a phone the top bar is a menu, opened without any script.
        phone = chromium.new_context(viewport=WIDTHS["phone"], java_script_enabled=False)
        page = phone.new_page()
        page.goto(base + "/")
        assert not page.locator(".topnav").is_visible()
        assert not page.locator(".menu-panel").is_visible()
        page.locator("summary.menu-button").click()
        assert page.locator(".menu-panel").is_visible()
        _shoot(page, "menu-phone")
        page.locator(".menu-panel").get_by_role("link", name="Status").click()
        page.wait_for_url(f"{base}/status")
        assert page.locator('.menu-list a[aria-current="page"]').text_content() == "Status"

        # The keyboard's first stop is the skip link, and it leads to the content.
        desktop = chromium.new_context(viewport=WIDTHS["desktop"], java_script_enabled=False)
        page = desktop.new_page()
        page.goto(base + "/models")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        assert skip.evaluate("element => element === document.activeElement")
        assert skip.is_visible()

        # An admin's round: find the customer, add credits, disable the account.
        admin_email, customer_email = "ops@example.com", "carol@example.com"
        _sign_up(page, base, admin_email)
        other = chromium.new_context(viewport=WIDTHS["phone"], java_script_enabled=False)
        _sign_up(other.new_page(), base, customer_email)
        url = live.runtime.settings.resolved_database_url
        with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
            work = _promote_and_key(url, admin_email, customer_email)
            account_id, key = pool.submit(asyncio.run, work).result()
        _sign_in(page, base, admin_email)  # promotion signed the admin out
        page.get_by_role("link", name="Admin").click()
        page.wait_for_url(f"{base}/admin")
        _shoot(page, "admin-desktop")
        page.get_by_label("Search people and accounts").fill("carol")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name=account_id).click()
        page.wait_for_url(f"{base}/admin/accounts/{account_id}")
        page.get_by_label("Credits", exact=True).fill("750")
        page.get_by_label("Reason", exact=True).fill("Welcome credit")
        page.get_by_role("button", name="Adjust credits").click()
        page.wait_for_url(f"{base}/admin/accounts/{account_id}?done=credits_adjusted")
        assert page.locator(".stat-value").first.inner_text() == "750"
        page.get_by_role("button", name="Disable the account").click()
        page.wait_for_url(f"{base}/admin/accounts/{account_id}?done=account_disabled")
        _shoot(page, "admin-account-desktop")
        refused = httpx.get(f"{base}/v1/models", headers={"authorization": f"Bearer {key}"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "account_disabled"
        page.get_by_role("link", name="Audit log").click()
        assert "Disabled the account" in page.locator("main").inner_text()
        assert "Adjusted credits" in page.locator("main").inner_text()
        _shoot(page, "admin-audit-desktop")

        # The customer sees no admin link, and /admin is a page that does not exist.
        customer = other.pages[0]
        assert customer.locator('a[href="/admin"]').count() == 0
        response = customer.goto(f"{base}/admin/accounts/{account_id}")
        assert response is not None and response.status == 404
        _shoot(customer, "admin-as-customer-phone")
