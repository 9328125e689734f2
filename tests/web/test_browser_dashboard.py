"""The dashboard in a real browser (Debian's Chromium) against a live server: a person's requests
show on the overview and the usage page, the keyboard reaches the filters in order, the time
zone changes, the CSV downloaded holds the rows the API lists, and deleting an output makes its
URL answer 404. With JavaScript off the copy buttons stay hidden and everything else works.
Screenshots of every dashboard page at desktop and phone widths go to test-artifacts/dashboard/."""

from __future__ import annotations

import asyncio
import csv
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.web.browser import (
    ARTIFACTS,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.live import live_web_server

from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import issue_key
from reapi_server.credits.service import grant
from reapi_server.db import Database
from reapi_server.identity import repository as users

pytestmark = pytest.mark.browser

PASSWORD = "copper lantern orchard 2044"
SHOTS = ARTIFACTS / "dashboard"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {
    "overview": "/dashboard",
    "usage": "/dashboard/usage",
    "usage-failed": "/dashboard/usage?status=failed",
    "outputs": "/dashboard/outputs",
    "outputs-delete-all": "/dashboard/outputs/delete-all",
}


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _key_and_credits(url: str, email: str) -> str:
    db = Database(url)
    try:
        async with db.write() as session:
            user = await users.find_user_by_email(session, email)
            account = await account_of(session, user.id)
            await grant(session, account.id, 10_000, 1.0)
            _, issued = await issue_key(session, account.id, name="Browser test", now=1.0)
            return issued.plaintext
    finally:
        await db.dispose()


def _requests(base: str, key: str) -> list[str]:
    """Two images (their file ids), one refused request."""
    headers = {"authorization": f"Bearer {key}"}
    answer = httpx.post(
        f"{base}/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a fox", "n": 2, "response_format": "url"},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    refused = httpx.post(
        f"{base}/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a fox", "size": "7x7"},
        headers=headers,
        timeout=30,
    )
    assert refused.status_code == 400
    return [item["url"].rsplit("/", 2)[-2] for item in answer.json()["data"]]


def test_the_dashboard_in_a_browser(chromium, tmp_path, migrated_template):  # noqa: F811
    email = "lin@example.com"
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        context = chromium.new_context(viewport=WIDTHS["desktop"], accept_downloads=True)
        page = context.new_page()
        page.goto(f"{base}/signup")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("I am 16 or older").check()
        page.locator("#f-accept_terms").check()
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/settings?done=welcome")
        url = live.runtime.settings.resolved_database_url
        # (Playwright's own event loop runs in this thread: the database work gets another)
        with ThreadPoolExecutor(1) as pool:
            key = pool.submit(asyncio.run, _key_and_credits(url, email)).result()
        files = _requests(base, key)

        # The overview: the money, the chart (an image with a name), the latest requests.
        page.goto(f"{base}/dashboard")
        assert page.get_by_role("img", name="Credits spent per day").is_visible()
        latest = page.get_by_role("table", name="Latest requests, newest first")
        assert latest.get_by_role("row").count() == 3  # the header and two requests
        assert page.get_by_role("button", name="Copy").first.is_visible()  # JavaScript on

        # The usage page: the keyboard goes from the filters' first field through them in order.
        page.goto(f"{base}/dashboard/usage")
        page.locator("#f-from").focus()
        order: list[str] = []
        for _ in range(16):  # (a date field's day, month and year are stops of their own)
            here = page.evaluate(
                "document.activeElement.id || document.activeElement.textContent.trim()"
            )
            if not order or order[-1] != here:
                order.append(here)
            if here == "Apply":
                break
            page.keyboard.press("Tab")
        assert order == ["f-from", "f-to", "f-key", "f-model", "f-status", "Apply"]
        page.get_by_label("Status").select_option("failed")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url(f"{base}/dashboard/usage?*status=failed*")
        assert page.get_by_text("invalid_value").is_visible()

        # The time zone: chosen in the list, saved, and the page's times follow it.
        page.get_by_role("combobox", name="Time zone").select_option("Asia/Tokyo")
        page.get_by_role("button", name="Save time zone").click()
        page.wait_for_url("**done=time_zone_saved*")
        assert page.get_by_text("Your time zone is saved.").is_visible()
        assert page.get_by_text("Times are in Asia/Tokyo").is_visible()

        # The CSV: what the browser downloads is what the API lists.
        page.goto(f"{base}/dashboard/usage")
        with page.expect_download() as downloaded:
            page.get_by_role("link", name="Download CSV").click()
        lines = list(csv.DictReader(io.StringIO(downloaded.value.path().read_text())))
        listed = page.request.get(f"{base}/api/usage").json()["data"]
        assert [line["request_id"] for line in lines] == [row["id"] for row in listed]
        assert len(lines) == 2 and lines[0]["time"].endswith("+09:00")

        # Outputs: delete one; its URL answers 404 at once, the other's still works.
        page.goto(f"{base}/dashboard/outputs")
        page.get_by_role("button", name="Delete").first.click()
        page.wait_for_url(f"{base}/dashboard/outputs?done=output_deleted")
        gone = [f for f in files if httpx.get(f"{base}/v1/files/{f}/content").status_code == 404]
        assert len(gone) == 1
        assert page.locator(".output").count() == 1
        cookies = [{"name": c["name"], "value": c["value"], "url": base} for c in context.cookies()]
        context.close()

        # Every page, without JavaScript, at both widths: no copy button, nothing else missing.
        for label, viewport in WIDTHS.items():
            still = chromium.new_context(viewport=viewport, java_script_enabled=False)
            still.add_cookies(cookies)
            shot = still.new_page()
            for name, path in PAGES.items():
                shot.goto(base + path)
                assert shot.locator("h1").is_visible()
                assert shot.get_by_role("button", name="Copy").count() == 0
                _shoot(shot, f"{name}-{label}")
            still.close()
