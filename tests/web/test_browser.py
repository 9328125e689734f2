"""A person in a real browser (Debian's Chromium): sign up, verify by the mail in
<data_dir>/mail/, sign out and in, change the password, and the old session is gone.

Runs against a live server configured as the demo is (plain http on loopback), with the mail
outbox loop delivering for real."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from tests.web.browser import chromium  # noqa: F401  (fixture)
from tests.web.helpers import read_mail
from tests.web.live import live_web_server

pytestmark = pytest.mark.browser

PASSWORD = "violet harbour lantern 2031"
NEW_PASSWORD = "copper meadow signal 1987"


def _wait_for_mail(directory: Path, address: str, subject: str, seconds: float = 15) -> str:
    """The plain text of the first message to `address` whose subject has `subject`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for mail in read_mail(directory) if directory.exists() else []:
            if mail.to == address and subject in mail.subject:
                return mail.text
        time.sleep(0.1)
    raise AssertionError(f"no {subject!r} mail for {address} in {directory}")


def test_sign_up_verify_sign_in_change_password(chromium, tmp_path, migrated_template):  # noqa: F811
    email = "grace@example.com"
    with live_web_server(tmp_path / "data", migrated_template) as live:
        base = live.base_url
        main = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = main.new_page()

        # Sign up: everything typed, both boxes ticked, with the keyboard and the mouse.
        page.goto(f"{base}/signup")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("I am 16 or older").check()
        page.locator("#f-accept_terms").check()
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/settings?done=welcome")
        assert page.get_by_text("Not verified").is_visible()

        # The verification mail, as a person running the demo would read it.
        text = _wait_for_mail(live.mail_dir, email, "Confirm your email")
        link = re.search(r"http://\S+/verify\?token=\S+", text).group(0)
        page.goto(link)
        page.get_by_role("button", name="Confirm email address").click()
        page.wait_for_url(f"{base}/settings?done=verified")
        assert page.get_by_text("Your email address is verified.").is_visible()
        assert page.locator(".badge-ok", has_text="Verified").is_visible()

        # Sign out, then in again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/settings")

        # A second browser signed in too: its session must end when the password changes.
        other = chromium.new_context(viewport={"width": 390, "height": 844})
        phone = other.new_page()
        phone.goto(f"{base}/login")
        phone.get_by_label("Email address").fill(email)
        phone.get_by_label("Password").fill(PASSWORD)
        phone.get_by_role("button", name="Sign in").click()
        phone.wait_for_url(f"{base}/settings")
        page.reload()
        assert page.locator(".session").count() == 2

        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        page.wait_for_url(re.compile(r".*/settings\?done=password_changed.*"))
        assert page.locator(".session").count() == 1
        _wait_for_mail(live.mail_dir, email, "password was changed")

        phone.goto(f"{base}/settings")
        phone.wait_for_url(f"{base}/login?next=/settings")

        # The new password works, the old one no longer does.
        phone.get_by_label("Email address").fill(email)
        phone.get_by_label("Password").fill(PASSWORD)
        phone.get_by_role("button", name="Sign in").click()
        assert "do not match" in phone.locator("#f-password-error").inner_text()
        phone.get_by_label("Password").fill(NEW_PASSWORD)
        phone.get_by_role("button", name="Sign in").click()
        phone.wait_for_url(f"{base}/settings")
