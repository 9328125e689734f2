"""An operator-made person's first sign-in in a real browser (Debian's Chromium): the consent
page comes first, tells what is missing, then leads on to the settings. Screenshots at desktop
and phone widths go to test-artifacts/consent/."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.web.browser import (
    ARTIFACTS,
    accessibility_problems,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.live import live_web_server

from reapi_server.accounts.service import create_account
from reapi_server.db import Database
from reapi_server.identity import repository as users
from reapi_server.identity.passwords import Passwords

pytestmark = pytest.mark.browser

PASSWORD = "amber quarry whistle 1942"
SHOTS = ARTIFACTS / "consent"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


async def _operator_made(url: str, email: str) -> None:
    """`accounts create`, then the password the person would set by "reset password"."""
    db = Database(url)
    try:
        async with db.write() as session:
            await create_account(session, email, credits_granted=0, now=1.0)
            user = await users.find_user_by_email(session, email)
            await users.set_password_hash(session, user.id, await Passwords().hash(PASSWORD))
    finally:
        await db.dispose()


def test_the_consent_page_comes_first(chromium, tmp_path, migrated_template):  # noqa: F811
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        url = live.runtime.settings.resolved_database_url
        for label, viewport in WIDTHS.items():
            email = f"ops-{label}@example.com"
            with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
                pool.submit(asyncio.run, _operator_made(url, email)).result()
            context = chromium.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.get_by_label("Email address").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/login/consent?next=%2Fsettings")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"consent-{label}.png"), full_page=True)
            assert accessibility_problems(page) == []

            page.get_by_label("I am 16 or older").check()
            page.get_by_role("button", name="Continue").click()
            assert "Accept the terms and the privacy policy" in page.locator("main").inner_text()
            page.screenshot(path=str(SHOTS / f"consent-refused-{label}.png"), full_page=True)
            page.locator("#f-accept_terms").check()
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(f"{base}/settings")
            context.close()
