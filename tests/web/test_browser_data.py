"""A person in a real browser (Debian's Chromium) takes their data and leaves: "Download my
data" saves the JSON file, "Delete account" (password and typed address) signs them out, the
confirmation arrives in <data_dir>/mail/, and their API key no longer works."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.web.browser import chromium  # noqa: F401  (fixture)
from tests.web.live import live_web_server
from tests.web.test_browser import _wait_for_mail

from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import issue_key
from reapi_server.db import Database
from reapi_server.identity import repository as users

pytestmark = pytest.mark.browser

PASSWORD = "amber orchard whistle 2044"


async def _issue_key(url: str, email: str) -> str:
    db = Database(url)
    try:
        async with db.write() as session:
            user = await users.find_user_by_email(session, email)
            account = await account_of(session, user.id)
            _, issued = await issue_key(session, account.id, name="laptop", now=1.0)
    finally:
        await db.dispose()
    return issued.plaintext


def test_download_my_data_then_delete_the_account(chromium, tmp_path, migrated_template):  # noqa: F811
    email = "ada@example.com"
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        page = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
        page.goto(f"{base}/signup")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("I am 16 or older").check()
        page.locator("#f-accept_terms").check()
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/settings?done=welcome")
        url = live.runtime.settings.resolved_database_url
        with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
            key = thread.submit(asyncio.run, _issue_key(url, email)).result()
        headers = {"authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/v1/credits", headers=headers).status_code == 200

        with page.expect_download() as download:
            page.get_by_role("link", name="Download my data").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".json"
        document = json.loads(saved.read_text())
        assert document["profile"][0]["email"] == email
        assert document["api_keys"][0]["last4"] == key[-4:] and key not in saved.read_text()

        page.get_by_role("link", name="Delete account…").click()
        page.wait_for_url(f"{base}/settings/delete")
        page.get_by_label("Your password").fill(PASSWORD)
        page.get_by_label("Type your email address to confirm").fill(email)
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_url(f"{base}/login?done=account_deleted")
        assert page.get_by_text("Your account is deleted.").is_visible()
        assert "7 years" in _wait_for_mail(live.mail_dir, email, "account was deleted")

        page.goto(f"{base}/settings")
        page.wait_for_url(f"{base}/login?next=/settings")
        assert httpx.get(f"{base}/v1/credits", headers=headers).status_code == 401
