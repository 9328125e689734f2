"""The customer's journey through the dashboard in a real browser (Debian's Chromium) against a
live gateway with simulated providers:

sign in → create a key with a model allowlist and a spend limit (the keys page's form) → call
/v1 with the official openai client and that key → the request appears on the overview and the
usage page → the CSV downloaded from the page holds exactly the page's rows → exhaust the key's
limit (402 `key_spend_limit_reached`) → delete an output on the outputs page (its URL answers 404
at once) → an admin disables the account in the admin pages → the key answers 403
`account_disabled`.

On the way: the usage filters in keyboard order, the time zone setting, and on every dashboard
page at 1280 and 390 pixels wide, with JavaScript and without, contrast, names and focus rings
checked and a screenshot kept in test-artifacts/dashboard/."""

from __future__ import annotations

import csv
import io
import re

import httpx
import openai
import pytest
from tests.server.fakes import FakeUpstream
from tests.web.browser import (
    ARTIFACTS,
    SIDEWAYS_CODE,
    accessibility_problems,
    chromium,  # noqa: F401  (fixture)
)
from tests.web.live import live_web_server
from tests.web.test_keys_browser import PASSWORD, _account_of, _grant, _in_thread, sign_up_verified

from reapi.testing import png_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

SHOTS = ARTIFACTS / "dashboard"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
IMAGE = 40  # gpt-image-2 in the test catalog
LIMIT = 3 * IMAGE
STATUS_WORDS = {"succeeded": "Succeeded", "failed": "Failed", "pending": "Running"}

#: The rows of the usage page's table as the page shows them.
PAGE_ROWS = """() => [...document.querySelectorAll("table.table-stack tbody tr")].map((tr) => ({
  id: tr.querySelector("code.request-id").textContent.trim(),
  time: tr.querySelector("time").getAttribute("datetime"),
  model: tr.querySelector('[data-label="Model"]').textContent.trim(),
  status: tr.querySelector('[data-label="Status"] .badge').textContent.trim(),
  error: (tr.querySelector('[data-label="Status"] code') || {textContent: ""}).textContent.trim(),
  credits: tr.querySelector('[data-label="Credits"]').textContent.trim(),
}))"""


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/settings")


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


def _create_limited_key(page, base: str) -> tuple[str, str]:
    """(key id, secret): a key that may call gpt-image-2 only and spend LIMIT a month."""
    page.goto(f"{base}/dashboard/keys")
    page.get_by_label("Name", exact=True).fill("journey")
    page.get_by_label("Spend limit").fill(str(LIMIT))
    page.get_by_label("Period").select_option("monthly")
    page.get_by_label("Only the models ticked below").check()
    page.get_by_label("gpt-image-2").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert secret.startswith("rk_live_")
    _shoot(page, "keys-created-desktop")
    key_id = page.locator(".key-item", has_text="journey").get_attribute("id")[len("key-") :]
    return key_id, secret


def _file_id(url: str) -> str:
    return re.search(r"/v1/files/([^/]+)/content", url).group(1)


def _check_usage_filters_in_keyboard_order(page, base: str) -> None:
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


def _every_page(base: str, key_id: str) -> dict[str, str]:
    return {
        "overview": "/dashboard",
        "keys": "/dashboard/keys",
        "key-edit": f"/dashboard/keys/{key_id}",
        "key-revoke": f"/dashboard/keys/{key_id}/revoke",
        "usage": "/dashboard/usage",
        "usage-filtered": f"/dashboard/usage?key={key_id}&status=failed",
        "outputs": "/dashboard/outputs",
        "outputs-delete-all": "/dashboard/outputs/delete-all",
    }


def _look_at_every_page(chromium, base: str, cookies: list, pages: dict[str, str]) -> None:  # noqa: F811
    """Each page at both widths: with JavaScript (a screenshot; contrast, names, focus rings),
    and without (it still renders, and offers no copy button, the one thing that needs it)."""
    problems: dict[str, list[str]] = {}
    for width, viewport in WIDTHS.items():
        for scripts in (True, False):
            context = chromium.new_context(viewport=viewport, java_script_enabled=scripts)
            context.add_cookies(cookies)
            page = context.new_page()
            for name, path in pages.items():
                answer = page.goto(base + path)
                assert answer is not None and answer.status == 200, path
                assert page.locator("h1").is_visible(), path
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{path} is {overflow}px wider than a {width} screen"
                assert page.evaluate(SIDEWAYS_CODE) == 0, f"{path}: a code window scrolls"
                if scripts:
                    _shoot(page, f"{name}-{width}")
                    found = accessibility_problems(page)
                    if found:
                        problems[f"{name}-{width}"] = found
                else:
                    assert page.locator("[data-copy]:visible").count() == 0, path
            context.close()
    assert not problems, problems


def test_the_customer_journey(chromium, tmp_path, migrated_template):  # noqa: F811
    email, admin_email = "lin@example.com", "ops@example.com"
    # Real pictures, so that the outputs page's thumbnails show as a person would see them.
    upstream = FakeUpstream(image_body=png_bytes(512, 512, (70, 110, 190)))
    with live_web_server(tmp_path / "data", migrated_template, upstream=upstream) as live:
        base = live.base_url
        context = chromium.new_context(viewport=WIDTHS["desktop"], accept_downloads=True)
        page = context.new_page()

        # Sign in (after signing up and confirming the address, which creating keys needs).
        sign_up_verified(page, base, live.mail_dir, email)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        _sign_in(page, base, email)
        account_id = _account_of(live, email)
        _grant(live, account_id, 1000)

        # A key with a model allowlist and a spend limit, made with the keys page's form.
        key_id, secret = _create_limited_key(page, base)

        # The official openai client calls /v1 with it.
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
        raw = client.images.with_raw_response.generate(
            model="gpt-image-2", prompt="a lighthouse at dusk", response_format="url"
        )
        request_id = raw.headers["x-request-id"]
        first_file = _file_id(raw.parse().data[0].url)
        with pytest.raises(openai.PermissionDeniedError) as not_allowed:
            client.videos.create(model="sim-video", prompt="waves", seconds="4", size="1280x720")
        assert not_allowed.value.code == "model_not_allowed"

        # The request appears on the overview and on the usage page.
        page.goto(f"{base}/dashboard")
        assert page.get_by_role("img", name="Credits spent per day").is_visible()
        latest = page.get_by_role("table", name="Latest requests, newest first")
        assert latest.get_by_text(request_id).is_visible()
        page.goto(f"{base}/dashboard/usage")
        assert (
            page.get_by_role("table", name="Requests, newest first")
            .get_by_text(request_id)
            .is_visible()
        )
        _check_usage_filters_in_keyboard_order(page, base)

        # Times follow the person's zone, saved on the usage page.
        page.get_by_role("combobox", name="Time zone").select_option("Asia/Tokyo")
        page.get_by_role("button", name="Save time zone").click()
        page.wait_for_url("**done=time_zone_saved*")
        assert page.get_by_text("Your time zone is saved.").is_visible()

        # Exhaust the key's limit: two more images make LIMIT, the next is refused with 402.
        more = client.images.generate(
            model="gpt-image-2", prompt="a harbour", n=2, response_format="url"
        )
        files = [first_file, *(_file_id(item.url) for item in more.data)]
        with pytest.raises(openai.APIStatusError) as refused:
            client.images.generate(model="gpt-image-2", prompt="one more", response_format="url")
        assert refused.value.status_code == 402
        assert refused.value.code == "key_spend_limit_reached"
        page.goto(f"{base}/dashboard/keys")
        spend = page.locator(".key-item", has_text="journey").inner_text()
        assert f"{LIMIT} of {LIMIT} credits spent this month" in spend

        # The CSV downloaded from the usage page holds exactly the rows the page shows.
        page.goto(f"{base}/dashboard/usage")
        shown = page.evaluate(PAGE_ROWS)
        assert request_id in [row["id"] for row in shown]
        with page.expect_download() as downloaded:
            page.get_by_role("link", name="Download CSV").click()
        exported = list(csv.DictReader(io.StringIO(downloaded.value.path().read_text())))
        assert [
            {
                "id": line["request_id"],
                "time": line["time"],
                "model": line["model"],
                "status": STATUS_WORDS[line["status"]],
                "error": line["error_code"],
                "credits": line["credit_cost"] if line["status"] != "pending" else "—",
            }
            for line in exported
        ] == shown
        assert all(line["time"].endswith("+09:00") for line in exported)
        assert sum(int(line["credit_cost"]) for line in exported) == LIMIT
        listed = page.request.get(f"{base}/api/usage").json()["data"]
        assert [row["id"] for row in listed] == [row["id"] for row in shown]

        # Delete an output on the outputs page: its URL answers 404 at once, the others stay.
        page.goto(f"{base}/dashboard/outputs")
        assert page.locator(".output").count() == len(files)
        page.locator(f'a[href="/dashboard/outputs/{first_file}/delete"]').click()
        page.wait_for_url(f"{base}/dashboard/outputs/{first_file}/delete")  # asks first
        page.locator(f'form[action="/dashboard/outputs/{first_file}/delete"] button').click()
        page.wait_for_url(f"{base}/dashboard/outputs?done=output_deleted")
        assert httpx.get(f"{base}/v1/files/{first_file}/content").status_code == 404
        for other in files[1:]:
            assert httpx.get(f"{base}/v1/files/{other}/content").status_code == 200
        assert page.locator(".output").count() == len(files) - 1

        # Every dashboard page, seen at both widths, with and without JavaScript.
        cookies = [{"name": c["name"], "value": c["value"], "url": base} for c in context.cookies()]
        _look_at_every_page(chromium, base, cookies, _every_page(base, key_id))

        # An admin disables the account in the admin pages; the key answers 403 at once.
        ops = chromium.new_context(viewport=WIDTHS["desktop"])
        admin = ops.new_page()
        sign_up_verified(admin, base, live.mail_dir, admin_email)
        _promote(live, admin_email)
        _sign_in(admin, base, admin_email)  # promotion signed the admin out
        admin.goto(f"{base}/admin/accounts/{account_id}")
        admin.get_by_role("button", name="Disable the account").click()
        admin.wait_for_url(f"{base}/admin/accounts/{account_id}?done=account_disabled")
        with pytest.raises(openai.PermissionDeniedError) as disabled:
            client.images.generate(model="gpt-image-2", prompt="after", response_format="url")
        assert disabled.value.code == "account_disabled"
        client.close()
        ops.close()

        # The person sees why, on the overview and the keys page.
        for name, path in (("overview", "/dashboard"), ("keys", "/dashboard/keys")):
            page.goto(base + path)
            assert page.get_by_role("alert").get_by_text("This account is disabled").is_visible()
            _shoot(page, f"{name}-disabled-desktop")
        context.close()


def test_the_accessibility_check_finds_what_it_looks_for(chromium):  # noqa: F811
    page = chromium.new_page()
    page.set_content(
        """<body style="background:#fff"><main>
        <p style="color:#777">grey on white: 4.48:1</p>
        <p style="color:#767676">grey on white: 4.54:1</p>
        <div style="background:#1b42ad"><span style="color:#2251d1">blue on blue</span></div>
        <input type="text" name="nameless">
        <label for="named">Named</label><input id="named" style="outline:none">
        <a href="/x" tabindex="2">first</a><button type="button"></button>
        </main></body>"""
    )
    found = accessibility_problems(page)
    contrast = [p for p in found if p.startswith("contrast")]
    assert len(contrast) == 2, found
    assert "grey on white: 4.48" in contrast[0] and "blue on blue" in contrast[1]
    assert any(p.startswith("no label") and "nameless" in p for p in found)
    assert any(p.startswith("no name") and "<button" in p for p in found)
    assert any(p.startswith("tabindex > 0") for p in found)
    assert any(p.startswith("no focus ring") and "named" in p for p in found)
    page.set_content('<body><p>Fine</p><label for="a">A</label><input id="a"></body>')
    assert accessibility_problems(page) == []
    page.close()
