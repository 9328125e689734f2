"""A key's webhook in a real browser (Debian's Chromium): a person sets the key's default webhook
URL on the keys page, has the page show the signing secret, makes a video with the key, and their
receiver gets it signed with that secret. The receiver is on loopback, which the operator allows
with `webhook_allow_networks` (as for a demo); screenshots at desktop and phone widths
(test-artifacts/keys/)."""

from __future__ import annotations

import http.server
import threading
import time

import httpx
import pytest
from playwright.sync_api import expect
from tests.web.browser import chromium  # noqa: F401  (fixture)
from tests.web.live import live_web_server
from tests.web.test_keys_browser import _account_of, _grant, _in_thread, shoot, sign_up_verified

from reapi import webhooks

pytestmark = [pytest.mark.browser]


class _Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/reapi"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_keys_webhook_set_on_the_page_arrives_signed(chromium, tmp_path, migrated_template):  # noqa: F811
    receiver = _Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    overrides = {"webhook_allow_networks": ["127.0.0.0/8"], "webhook_poll_interval": 0.1}
    with live_web_server(tmp_path / "data", migrated_template, **overrides) as live:
        base = live.base_url
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_up_verified(page, base, live.mail_dir, "hooks@example.com")
        _grant(live, _account_of(live, "hooks@example.com"), 10_000)

        page.goto(f"{base}/dashboard/keys")
        page.get_by_label("Name", exact=True).fill("renders")
        page.get_by_label("Webhook URL").fill("http://10.0.0.1/hook")
        page.get_by_role("button", name="Create key").click()
        assert page.locator("#f-webhook_url-error").is_visible()
        shoot(page, "webhook-error-desktop")
        page.get_by_label("Webhook URL").fill(receiver.url)
        page.get_by_role("button", name="Create key").click()
        key = page.locator("#new-key-secret").inner_text().strip()
        item = page.locator(".key-item", has_text="renders")
        assert receiver.url in item.inner_text()
        shoot(page, "webhook-created-desktop")

        item.get_by_role("link", name="Edit the limits of renders").click()
        assert page.get_by_label("Webhook URL").input_value() == receiver.url
        page.get_by_role("button", name="Show signing secret").click()
        secret = page.locator("#webhook-secret-value").inner_text().strip()
        assert secret.startswith("whsec_")
        # copy.js un-hides the button once it has run: wait for it rather than race the script
        expect(page.get_by_role("button", name="Copy secret")).to_be_visible()
        shoot(page, "webhook-secret-desktop")

        created = httpx.post(
            f"{base}/v1/videos",
            json={"model": "sim-video", "prompt": "a wave", "size": "1280x720"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + 20
        while not receiver.posts:
            assert time.monotonic() < deadline, "no webhook arrived"
            time.sleep(0.05)
        headers, body = receiver.posts[0]
        video = webhooks.verify(body, headers, secret)
        assert video["id"] == created.json()["id"] and video["status"] == "completed"

        _stop_webhooks(live)  # as a receiver's 410 Gone does
        page.goto(page.url.removesuffix("/webhook-secret"))  # the edit page, afresh
        assert "410 Gone" in page.locator(".webhook-stopped").inner_text()
        page.get_by_label("Send this key's webhooks to this URL again").check()
        shoot(page, "webhook-stopped-desktop")
        page.get_by_role("button", name="Save").click()
        item = page.locator(".key-item", has_text="renders")
        assert "410 Gone" not in item.inner_text()

        phone = chromium.new_context(viewport={"width": 390, "height": 844})
        small = phone.new_page()
        small.goto(f"{base}/login")
        small.get_by_label("Email address").fill("hooks@example.com")
        small.get_by_label("Password").fill("amber kestrel window 4410")
        small.get_by_role("button", name="Sign in").click()
        small.goto(f"{base}/dashboard/keys")
        shoot(small, "webhook-list-phone")
        small.locator(".key-item", has_text="renders").get_by_role(
            "link", name="Edit the limits of renders"
        ).click()
        small.get_by_role("button", name="Make a new secret").click()
        assert small.locator("#webhook-secret-value").inner_text().strip() != secret
        shoot(small, "webhook-rotated-phone")
        phone.close()
        context.close()
    receiver.shutdown()


def _stop_webhooks(live) -> None:
    from sqlalchemy import update

    from reapi_server.db import Database
    from reapi_server.models import ApiKey

    async def stop() -> None:
        db = Database(live.runtime.settings.resolved_database_url)
        try:
            async with db.write() as session:
                await session.execute(update(ApiKey).values(webhook_disabled_at=1.0))
        finally:
            await db.dispose()

    _in_thread(stop)
