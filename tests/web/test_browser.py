"""A person in a real browser (Debian's Chromium), one journey through everything about them:
sign up (16 or older, the terms accepted), verify by the mail in <data_dir>/mail/, sign out and
in, change the password (another browser's session ends); turn on two-factor authentication (the
code computed from the key the page shows), sign out, sign in with the password and a TOTP code;
sign out and "Continue with GitHub" on the simulated GitHub, which links the verified account and
asks for the second factor (a backup code); create an API key on the keys page and call /v1 with
it; download the data export (the account's data, no request body); delete the account (the
password and a code), after which the old session cookie and the old key are both refused. Then
a new person signs up with GitHub on the consent page and links Google.

The journey runs with JavaScript off (the pages need none). Every page about a person is
photographed at 1280 and 390 pixels wide into test-artifacts/people/. Runs against a live server
configured as the demo is (plain http on loopback), with the mail outbox loop delivering for
real."""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyotp
import pytest
from tests.web.browser import ARTIFACTS, chromium  # noqa: F401  (fixture)
from tests.web.helpers import read_mail
from tests.web.live import live_web_server

from reapi_server.accounts.service import account_of
from reapi_server.credits.service import grant
from reapi_server.db import Database
from reapi_server.demo import demo_sign_in
from reapi_server.identity import repository as users
from reapi_server.testing.identity_fakes import run_identity_fakes

pytestmark = pytest.mark.browser

PASSWORD = "violet harbour lantern 2031"
NEW_PASSWORD = "copper meadow signal 1987"
SHOTS = ARTIFACTS / "people"
WIDTHS = ({"width": 1280, "height": 900}, {"width": 390, "height": 844})
#: In the prompt of the /v1 call: it must not reach the export (nothing keeps a request body).
PROMPT_MARKER = "lighthouse-c0ffee-7d1e"


def shoot(page, name: str, part: str | None = None) -> None:
    """The whole page (or the element `part` selects) at desktop and phone width, then back to
    desktop."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for viewport in WIDTHS:
        page.set_viewport_size(viewport)
        path = str(SHOTS / f"{name}-{viewport['width']}.png")
        if part is None:
            page.screenshot(path=path, full_page=True)
        else:
            page.locator(part).screenshot(path=path)
    page.set_viewport_size(WIDTHS[0])


def _wait_for_mail(directory: Path, address: str, subject: str, seconds: float = 15) -> str:
    """The plain text of the first message to `address` whose subject has `subject`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for mail in read_mail(directory) if directory.exists() else []:
            if mail.to == address and subject in mail.subject:
                return mail.text
        time.sleep(0.1)
    raise AssertionError(f"no {subject!r} mail for {address} in {directory}")


def _link(text: str, path: str) -> str:
    return re.search(rf"http://\S+{re.escape(path)}\?token=\S+", text).group(0)


def _in_thread(work):
    """Run a coroutine function on a loop of its own: Playwright's sync API keeps one running
    in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


def _grant(url: str, email: str, credits: int) -> None:
    """What `reapi-server credits grant` does: credit to spend on the /v1 call."""

    async def add() -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                user = await users.find_user_by_email(session, email)
                account = await account_of(session, user.id)
                await grant(session, account.id, credits, time.time())
        finally:
            await db.dispose()

    _in_thread(add)


def test_a_person_from_sign_up_to_deletion(chromium, tmp_path, migrated_template):  # noqa: F811
    # The simulated GitHub knows Grace by this address (private there, verified).
    email = "grace@example.com"
    with (
        run_identity_fakes() as fakes,
        live_web_server(tmp_path / "data", migrated_template, oauth=demo_sign_in(fakes)) as live,
    ):
        base = live.base_url
        # Without JavaScript: every page about a person works with forms and links alone.
        main = chromium.new_context(viewport=WIDTHS[0], java_script_enabled=False)
        page = main.new_page()

        # Sign up: a refused form first, then everything typed, both boxes ticked.
        page.goto(f"{base}/signup")
        shoot(page, "signup")
        page.get_by_role("button", name="Create account").click()
        assert page.locator(".error-list").is_visible()
        shoot(page, "signup-refused")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("I am 16 or older").check()
        page.locator("#f-accept_terms").check()
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/settings?done=welcome")
        assert page.get_by_text("Not verified").is_visible()

        # The verification mail, as a person running the demo would read it.
        page.goto(_link(_wait_for_mail(live.mail_dir, email, "Confirm your email"), "/verify"))
        shoot(page, "verify")
        page.get_by_role("button", name="Confirm email address").click()
        page.wait_for_url(f"{base}/settings?done=verified")
        assert page.get_by_text("Your email address is verified.").is_visible()
        assert page.locator(".badge-ok", has_text="Verified").is_visible()

        # Sign out, then in again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        shoot(page, "login")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/settings")

        # A second browser signed in too: its session must end when the password changes.
        other = chromium.new_context(viewport=WIDTHS[1])
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
        other.close()

        # Two-factor authentication: the key as the page shows it, the code as an app makes it.
        page.get_by_role("button", name="Set up two-factor authentication").click()
        page.wait_for_url(f"{base}/settings/2fa")
        assert page.get_by_role("img", name=re.compile("QR code")).is_visible()
        shoot(page, "two-factor-setup")
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().replace(" ", ""))
        page.get_by_label("6-digit code").fill(totp.now())
        page.get_by_role("button", name="Turn on two-factor authentication").click()
        assert page.get_by_role("heading", name="Save your backup codes").is_visible()
        assert page.locator(".backup-codes li").count() == 10
        shoot(page, "two-factor-backup-codes")
        backup_codes = [code.strip() for code in page.locator(".backup-codes li").all_inner_texts()]
        page.get_by_role("link", name="I have saved my codes").click()
        assert page.locator("#two-factor .badge-ok", has_text="On").is_visible()

        # Signing in now takes the password and a code.
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url(f"{base}/login?done=signed_out")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/login/2fa")
        shoot(page, "login-two-factor")
        _wait_for_next_step()  # the code of a later step than the one that turned it on
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
        methods = page.locator("#sign-in-methods")
        assert methods.get_by_text(f"{email} · linked").is_visible()
        assert methods.get_by_role("button", name="Unlink GitHub").is_visible()
        assert page.get_by_text("9 of 10 backup codes left").is_visible()
        shoot(page, "settings")

        # The other pages of Settings, each as a person finds them.
        for path, name in (
            ("/settings/email", "settings-email"),
            ("/settings/2fa/disable", "settings-two-factor-off"),
            ("/settings/2fa/backup-codes", "settings-backup-codes"),
        ):
            page.goto(base + path)
            assert page.get_by_label("Your password").is_visible(), path  # step-up first
            shoot(page, name)

        # Reset, asked for from a browser signed out (the link is only looked at, not used).
        stranger = chromium.new_context(viewport=WIDTHS[0]).new_page()
        stranger.goto(f"{base}/reset")
        shoot(stranger, "reset")
        stranger.get_by_label("Email address").fill(email)
        stranger.get_by_role("button", name="Send reset link").click()
        assert stranger.get_by_role("heading", name="Check your email").is_visible()
        shoot(stranger, "reset-sent")
        stranger.goto(_link(_wait_for_mail(live.mail_dir, email, "Reset your"), "/reset/confirm"))
        assert stranger.get_by_role("button", name="Set new password").is_visible()
        shoot(stranger, "reset-confirm")
        stranger.context.close()

        # An API key from the keys page, and a call to /v1 with it.
        page.goto(f"{base}/dashboard/keys")
        page.get_by_label("Name", exact=True).fill("laptop")
        page.get_by_role("button", name="Create key").click()
        key = page.locator("#new-key-secret").inner_text().strip()
        assert key.startswith("rk_")
        shoot(page, "keys-created")
        _grant(live.runtime.settings.resolved_database_url, email, 1000)
        headers = {"authorization": f"Bearer {key}"}
        image = httpx.post(
            f"{base}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": f"a {PROMPT_MARKER} at dusk"},
            headers=headers,
            timeout=30,
        )
        assert image.status_code == 200, image.text
        request_id = image.headers["x-request-id"]

        # Settings → Data: the export holds the account's data, never a request's body.
        page.goto(f"{base}/settings#data")
        shoot(page, "settings-data", part="#data")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download my data").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        text = saved.read_text()
        document = json.loads(text)
        assert saved.suffix == ".json" and document["profile"][0]["email"] == email
        assert [k["last4"] for k in document["api_keys"]] == [key[-4:]]
        assert [u["id"] for u in document["usage"]] == [request_id]
        assert document["two_factor"][0]["enabled"] is True
        assert document["two_factor"][0]["backup_codes_left"] == 9
        assert [m["provider"] for m in document["sign_in_methods"]] == ["github"]
        assert {c["kind"] for c in document["consents"]} >= {"age_16_plus", "terms"}
        assert PROMPT_MARKER not in text and key not in text
        assert not any(code in text for code in backup_codes)

        # Delete the account: the password, a code from the app, the address typed.
        cookie = next(c["value"] for c in main.cookies() if c["name"] == "reapi_session")
        page.goto(f"{base}/settings")  # Settings → Profile → "Delete account…" (Data has one too)
        assert page.locator("#delete").get_by_role("link", name="Delete account…").is_visible()
        page.locator("#profile").get_by_role("link", name="Delete account…").click()
        page.wait_for_url(f"{base}/settings/delete")
        shoot(page, "delete")
        page.get_by_label("Your password").fill(NEW_PASSWORD)
        page.get_by_label("Type your email address to confirm").fill("not-me@example.com")
        page.get_by_role("button", name="Delete my account").click()
        assert page.locator(".error-list").is_visible()
        shoot(page, "delete-refused")
        page.get_by_label("Your password").fill(NEW_PASSWORD)
        _wait_for_next_step()  # the code of a later step than the one signed in with
        page.get_by_label("Authentication code").fill(totp.now())
        page.get_by_label("Type your email address to confirm").fill(email)
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_url(f"{base}/login?done=account_deleted")
        assert page.get_by_text("Your account is deleted.").is_visible()
        shoot(page, "deleted")
        assert "7 years" in _wait_for_mail(live.mail_dir, email, "account was deleted")

        # The old session cookie and the old key are both refused.
        with httpx.Client(base_url=base, cookies={"reapi_session": cookie}) as old:
            answer = old.get("/settings")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login")
        assert httpx.get(f"{base}/v1/credits", headers=headers).status_code == 401
        assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 401


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
        shoot(page, "consent")
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
