"""Turning two-factor authentication on in a test browser, and codes as an app would show."""

from __future__ import annotations

import re

import pyotp
from tests.web.helpers import Browser

SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<')
BACKUP_CODE = re.compile(r"\b[a-kmnp-z2-9]{5}-[a-kmnp-z2-9]{5}\b")


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def secret_on(html: str) -> str:
    match = SECRET.search(html)
    assert match, "no secret on the setup page"
    return match.group(1).replace(" ", "")


async def start_enrolment(browser: Browser) -> str:
    started = await browser.submit("/settings", "/settings/2fa/setup", {})
    assert started.status_code == 303 and started.headers["location"] == "/settings/2fa"
    page = await browser.get("/settings/2fa")
    assert page.status_code == 200, page.text
    return secret_on(page.text)


async def turn_on(browser: Browser, now: float) -> tuple[str, list[str]]:
    """(the TOTP secret, the ten backup codes)."""
    secret = await start_enrolment(browser)
    done = await browser.submit(
        "/settings/2fa", "/settings/2fa/enable", {"code": code_at(secret, now)}
    )
    assert done.status_code == 200, done.text
    codes = BACKUP_CODE.findall(done.text)
    assert len(codes) == 10, codes
    return secret, codes
