"""A person in a real browser (Debian's Chromium), one journey: sign up, verify by the mail in
<data_dir>/mail/, sign out and in, change the password, and the old session is gone; turn on
two-factor authentication (the code computed from the key the page shows), sign out, and sign
in with a TOTP code; sign out and sign in with the simulated GitHub, which links the verified
account and asks for the second factor (a backup code). Then a new person signs up with
GitHub on the consent page and links Google.

Runs against a live server configured as the demo is (plain http on loopback), with the mail
outbox loop delivering for real."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
import pytest
from tests.web.browser import chromium  # noqa: F401  (fixture)
from tests.web.helpers import read_mail
from tests.web.live import live_web_server

from reapi_server.demo import demo_sign_in
from reapi_server.testing.identity_fakes import run_identity_fakes

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


def test_sign_up_verify_two_factor_and_github(chromium, tmp_path, migrated_template):  # noqa: F811
    # The simulated GitHub knows Grace by this address (private there, verified).
    email = "grace@example.com"
    with (
        run_identity_fakes() as fakes,
        live_web_server(tmp_path / "data", migrated_template, oauth=demo_sign_in(fakes)) as live,
    ):
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

        # Two-factor authentication: the key as the page shows it, the code as an app makes it.
        page.get_by_role("button", name="Set up two-factor authentication").click()
        page.wait_for_url(f"{base}/settings/2fa")
        assert page.get_by_role("img", name=re.compile("QR code")).is_visible()
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().replace(" ", ""))
        page.get_by_label("6-digit code").fill(totp.now())
        page.get_by_role("button", name="Turn on two-factor authentication").click()
        assert page.get_by_role("heading", name="Save your backup codes").is_visible()
        assert page.locator(".backup-codes li").count() == 10
        backup_codes = [code.strip() for code in page.locator(".backup-codes li").all_inner_texts()]
        page.get_by_role("link", name="I have saved my codes").click()
        assert page.locator("#two-factor .badge-ok", has_text="On").is_visible()

        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/login/2fa")
        # The code of the step after the one used to turn it on (each code works once).
        _wait_for_next_step()
        page.get_by_label("Authentication code").fill(totp.now())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(f"{base}/settings")
        assert page.locator("#main").get_by_text(f"Signed in as {email}").is_visible()

        # GitHub: its verified address is this account's (itself verified), so signing in with
        # it links the two; the second factor is asked for as after a password.
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        page.get_by_role("button", name="Continue with GitHub").click()
        page.wait_for_url(re.compile(re.escape(fakes.urls["github"]) + r"/login/oauth/authorize"))
        page.get_by_role("button", name=re.compile("Grace Hopper")).click()
        page.wait_for_url(f"{base}/login/2fa")
        page.get_by_text("Use a backup code instead").click()
        page.get_by_label("Backup code").fill(backup_codes[0])
        page.get_by_role("button", name="Sign in with a backup code").click()
        page.wait_for_url(f"{base}/settings")
        assert page.locator("#main").get_by_text(f"Signed in as {email}").is_visible()
        methods = page.locator("#sign-in-methods")
        assert methods.get_by_text(f"{email} · linked").is_visible()
        assert methods.get_by_role("button", name="Unlink GitHub").is_visible()
        assert page.get_by_text("9 of 10 backup codes left").is_visible()


def _wait_for_next_step() -> None:
    time.sleep(30 - time.time() % 30 + 0.2)


def test_sign_in_with_the_simulated_github(chromium, tmp_path, migrated_template):  # noqa: F811
    """A new person clicks "Continue with GitHub", picks themselves on the simulated GitHub's
    page, accepts on the consent page and lands in Settings with GitHub linked; signed out,
    the same click signs them straight back in. Then Google is linked from Settings."""
    with (
        run_identity_fakes() as fakes,
        live_web_server(tmp_path / "data", migrated_template, oauth=demo_sign_in(fakes)) as live,
    ):
        base = live.base_url
        page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()

        page.goto(f"{base}/login")
        page.get_by_role("button", name="Continue with GitHub").click()
        page.wait_for_url(re.compile(re.escape(fakes.urls["github"]) + r"/login/oauth/authorize"))
        assert page.get_by_text("Sign in to reapi with GitHub (simulated)").is_visible()
        page.get_by_role("button", name=re.compile("Ada Lovelace")).click()

        page.wait_for_url(f"{base}/auth/consent")
        assert page.get_by_text("ada@example.com").is_visible()
        newsletter = page.get_by_label(re.compile("newsletter"))  # opt_in: offered, unticked
        assert newsletter.is_visible() and not newsletter.is_checked()
        page.get_by_label("I am 16 or older").check()
        page.locator("#f-accept_terms").check()
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/settings?done=welcome_verified")
        assert page.get_by_text("Your account is ready.").is_visible()
        assert page.locator(".badge-ok", has_text="Verified").is_visible()
        methods = page.locator("#sign-in-methods")
        assert methods.get_by_text("ada@example.com · linked").is_visible()

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        page.get_by_role("button", name="Continue with GitHub").click()
        page.get_by_role("button", name=re.compile("Ada Lovelace")).click()
        page.wait_for_url(f"{base}/settings")

        methods.get_by_role("button", name="Link Google").click()
        page.wait_for_url(re.compile(re.escape(fakes.urls["google"]) + r"/o/oauth2/v2/auth"))
        page.get_by_role("button", name=re.compile("Ada Lovelace")).click()
        page.wait_for_url(f"{base}/settings?done=identity_linked#sign-in-methods")
        assert methods.get_by_role("button", name="Unlink Google").is_visible()
        assert methods.get_by_role("button", name="Unlink GitHub").is_visible()
