"""The keys page in a real browser (Debian's Chromium): a verified person creates a key with a
spend limit and a model allowlist, copies its secret with the button, calls /v1 with the official
openai client, sees the spend on the page, edits the limits and revokes the key; the same page
without JavaScript; screenshots of every state at desktop and phone widths (test-artifacts/)."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import expect
from tests.web.browser import ARTIFACTS, chromium  # noqa: F401  (fixture)
from tests.web.live import live_web_server
from tests.web.test_browser import _wait_for_mail

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

PASSWORD = "amber kestrel window 4410"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
SHOTS = ARTIFACTS / "keys"


def shoot(page, name: str) -> None:
    """The whole page, and what the screen shows first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}-screen.png"))


def sign_up_verified(page, base: str, mail_dir, email: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("I am 16 or older").check()
    page.locator("#f-accept_terms").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/settings?done=welcome")
    text = _wait_for_mail(mail_dir, email, "Confirm your email")
    page.goto(re.search(r"http://\S+/verify\?token=\S+", text).group(0))
    page.get_by_role("button", name="Confirm email address").click()
    page.wait_for_url(f"{base}/settings?done=verified")


def test_keys_page_journey(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        sign_up_verified(page, base, live.mail_dir, "keys@example.com")
        account = _account_of(live, "keys@example.com")
        _grant(live, account, 1000)

        page.goto(f"{base}/dashboard/keys")
        shoot(page, "empty-desktop")
        page.get_by_label("Name", exact=True).fill("production")
        page.get_by_label("Spend limit").fill("80")
        page.get_by_label("Period").select_option("daily")
        page.get_by_label("Only the models ticked below").check()
        page.get_by_label("gpt-image-2").check()
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#new-key-secret").inner_text().strip()
        assert secret.startswith("rk_live_")
        copy = page.get_by_role("button", name="Copy key")
        expect(copy).to_be_visible()  # copy.js un-hides it once it has run
        copy.click()
        page.get_by_text("The key is copied to the clipboard.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        shoot(page, "created-desktop")

        client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
        client.images.generate(model="gpt-image-2", prompt="a lighthouse")
        with pytest.raises(openai.PermissionDeniedError):
            client.videos.create(model="sim-video", prompt="waves", seconds="4", size="1280x720")
        client.close()

        page.goto(f"{base}/dashboard/keys")
        item = page.locator(".key-item", has_text="production")
        assert "40 of 80 credits spent today" in item.inner_text()
        assert page.locator("#new-key-secret").count() == 0
        shoot(page, "list-desktop")

        item.get_by_role("link", name="Edit the limits of production").click()
        page.get_by_label("Spend limit").fill("")
        page.get_by_label("Requests per minute").fill("120")
        shoot(page, "edit-desktop")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r".*done=key_updated.*"))
        assert "(no limit)" in page.locator(".key-item", has_text="production").inner_text()

        page.get_by_label("Name of a new management key").fill("terraform")
        page.get_by_role("button", name="Create management key").click()
        assert page.locator("#new-key-secret").inner_text().startswith("rk_mgmt_")
        shoot(page, "management-desktop")

        # Errors beside their fields, the summary linking to each.
        page.goto(f"{base}/dashboard/keys")
        page.get_by_label("Name", exact=True).fill("broken")
        page.get_by_label("Expires on").fill("2001-01-01")
        page.get_by_role("button", name="Create key").click()
        assert page.locator("#f-expires_at-error").is_visible()
        shoot(page, "error-desktop")

        page.goto(f"{base}/dashboard/keys")
        page.get_by_role("link", name="Revoke production").click()
        shoot(page, "revoke-desktop")
        page.get_by_role("button", name="Revoke this key").click()
        page.wait_for_url(re.compile(r".*done=key_revoked.*"))
        page.get_by_text("Revoked keys (1)").click()  # folded away below the active ones
        assert "Revoked" in page.locator(".key-item", has_text="production").inner_text()

        # A phone, without JavaScript: no copy button, the secret still selectable, every
        # form still works.
        phone = chromium.new_context(
            viewport={"width": 390, "height": 844}, java_script_enabled=False
        )
        small = phone.new_page()
        small.goto(f"{base}/login")
        small.get_by_label("Email address").fill("keys@example.com")
        small.get_by_label("Password").fill(PASSWORD)
        small.get_by_role("button", name="Sign in").click()
        small.goto(f"{base}/dashboard/keys")
        shoot(small, "list-phone")
        small.get_by_label("Name", exact=True).fill("phone key")
        small.get_by_label("Spend limit").fill("500")
        small.get_by_role("button", name="Create key").click()
        assert small.locator("#new-key-secret").inner_text().startswith("rk_live_")
        assert not small.locator("[data-copy]").is_visible()
        assert small.locator("#new-key-secret").evaluate(
            "element => getComputedStyle(element).userSelect"
        ) in ("all", "auto")
        shoot(small, "created-phone")
        key_id = small.locator(".key-item", has_text="phone key").get_attribute("id")[4:]
        small.goto(f"{base}/dashboard/keys/{key_id}")
        shoot(small, "edit-phone")
        small.goto(f"{base}/dashboard/keys/{key_id}/revoke")
        shoot(small, "revoke-phone")
        phone.close()
        context.close()


def _account_of(live, email: str) -> str:
    from reapi_server.accounts.service import account_of
    from reapi_server.db import Database
    from reapi_server.identity import repository as users

    async def find() -> str:
        db = Database(live.runtime.settings.resolved_database_url)
        try:
            async with db.read() as session:
                user = await users.find_user_by_email(session, email)
                account = await account_of(session, user.id)
                return account.id
        finally:
            await db.dispose()

    return _in_thread(find)


def _grant(live, account: str, credits: int) -> None:
    from reapi_server.credits.service import grant
    from reapi_server.db import Database

    async def add() -> None:
        db = Database(live.runtime.settings.resolved_database_url)
        try:
            async with db.write() as session:
                await grant(session, account, credits, 1.0)
        finally:
            await db.dispose()

    _in_thread(add)


def _in_thread(work):
    """Run a coroutine function on a loop of its own: Playwright's sync API keeps one running
    in this thread."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()
