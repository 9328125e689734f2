"""Two-factor authentication: enrolment (QR and key, confirmed by a code), sign-in with a TOTP
code or a backup code (each used once), the pending sign-in that reaches nothing else, a new
session id after the second factor, throttled wrong codes, step-up for turning it off and for
new backup codes; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.web.helpers import PASSWORD, mail_to, new_email, web_context
from tests.web.two_factor_helpers import (
    BACKUP_CODE,
    code_at,
    secret_on,
    start_enrolment,
    turn_on,
)

from reapi_server.identity.totp import SecretBox
from reapi_server.models import BackupCode, User, WebSession

STEP = 30


async def _user(gateway, email):
    async with gateway.rt.db.read() as session:
        return (await session.execute(select(User).where(User.email == email))).scalar_one()


async def _signed_up_with_2fa(gateway, browsers, clock):
    email = new_email()
    browser = browsers(gateway)
    await browser.sign_up(email)
    secret, codes = await turn_on(browser, clock.now)
    clock.advance(STEP)  # the enrolment code's step is used up
    return email, browser, secret, codes


async def _second_factor(browser, code, field="code"):
    page = await browser.get("/login/2fa")
    assert page.status_code == 200, page.status_code
    from tests.web.helpers import csrf_of

    return await browser.client.post(
        "/login/2fa", data={field: code, "csrf_token": csrf_of(page.text), "next": "/settings"}
    )


# -- enrolment -------------------------------------------------------------------------------


async def test_setup_shows_a_qr_code_and_the_key_and_refuses_a_wrong_code(db_web, browsers, clock):
    email = new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    page = await browser.get("/settings")
    assert "Two-factor authentication" in page.text and "Set up two-factor" in page.text
    secret = await start_enrolment(browser)
    setup = await browser.get("/settings/2fa")
    assert "<svg" in setup.text and 'role="img"' in setup.text
    assert 'autocomplete="one-time-code"' in setup.text and 'inputmode="numeric"' in setup.text
    wrong = str((int(code_at(secret, clock.now)) + 1) % 1_000_000).zfill(6)
    refused = await browser.submit("/settings/2fa", "/settings/2fa/enable", {"code": wrong})
    assert refused.status_code == 401 and "That code is not right" in refused.text
    assert (await _user(db_web, email)).totp_enabled_at is None
    assert secret_on(refused.text) == secret  # the same secret, to try again
    done = await browser.submit(
        "/settings/2fa", "/settings/2fa/enable", {"code": code_at(secret, clock.now)}
    )
    assert done.status_code == 200 and len(set(BACKUP_CODE.findall(done.text))) == 10
    assert done.headers["cache-control"].startswith("no-store")
    user = await _user(db_web, email)
    assert user.totp_enabled_at == clock.now
    # At rest the secret is sealed: not in the row, and it opens only for this user.
    assert secret not in user.totp_secret
    box = SecretBox(web_context(db_web).identity.keys.totp)
    assert box.open(user.id, user.totp_secret) == secret
    with pytest.raises(ValueError) as refused_elsewhere:
        box.open("user_someone_else", user.totp_secret)
    assert refused_elsewhere.value.__context__ is None  # nothing of the cipher's error
    settings = await browser.get("/settings")
    assert "10 of 10 backup codes left" in settings.text
    assert any("is on" in m.subject for m in await mail_to(db_web.rt, email))


async def test_backup_codes_are_stored_as_keyed_hashes(db_web, browsers, clock):
    _, _, _, codes = await _signed_up_with_2fa(db_web, browsers, clock)
    async with db_web.rt.db.read() as session:
        stored = [r.code_hash for r in (await session.execute(select(BackupCode))).scalars()]
    assert len(stored) == 10
    assert not any(c.replace("-", "") in h or c in h for c in codes for h in stored)


# -- signing in ------------------------------------------------------------------------------


async def test_sign_in_with_a_totp_code_gets_a_new_session_id(db_web, browsers, clock):
    email, _, secret, _ = await _signed_up_with_2fa(db_web, browsers, clock)
    browser = browsers(db_web)
    first = await browser.sign_in(email)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login/2fa")
    pending = browser.cookie("reapi_session")
    assert pending
    done = await _second_factor(browser, code_at(secret, clock.now))
    assert done.status_code == 303 and done.headers["location"] == "/settings"
    full = browser.cookie("reapi_session")
    assert full and full != pending
    assert (await browser.get("/settings")).status_code == 200
    # The pending id is worth nothing now.
    stale = browsers(db_web)
    stale.client.cookies.set("reapi_session", pending)
    assert (await stale.get("/settings")).status_code == 303
    assert (await stale.get("/login/2fa")).headers["location"] == "/login"


async def test_a_wrong_password_never_reaches_the_code_page(db_web, browsers, clock):
    email, *_ = await _signed_up_with_2fa(db_web, browsers, clock)
    browser = browsers(db_web)
    assert (await browser.sign_in(email, "not the password at all")).status_code == 401
    assert (await browser.get("/login/2fa")).headers["location"] == "/login"


async def test_a_pending_sign_in_reaches_no_other_page(db_web, browsers, clock):
    email, owner, *_ = await _signed_up_with_2fa(db_web, browsers, clock)
    browser = browsers(db_web)
    await browser.sign_in(email)
    pages = ("/settings", "/settings/2fa", "/settings/email", "/settings/2fa/disable")
    for path in (*pages, "/dashboard/keys", "/settings/data/export.json", "/settings/delete"):
        response = await browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path
    home = await browser.get("/")  # the landing page, as anyone signed out sees it
    assert home.status_code == 200 and "Sign out" not in home.text
    page = await browser.get("/login/2fa")
    assert "Sign out" not in page.text  # the page does not treat it as signed in
    from tests.web.helpers import csrf_of

    token = csrf_of(page.text)
    for action, data in (
        ("/settings/password", {"current_password": PASSWORD, "password": "x" * 20}),
        ("/settings/sessions/end-others", {}),
        ("/settings/2fa/disable", {"current_password": PASSWORD, "code": "000000"}),
        ("/settings/notifications/devices", {"new_device_alerts": "yes"}),
    ):
        response = await browser.client.post(action, data={**data, "csrf_token": token})
        assert response.status_code == 303, action
        assert response.headers["location"].startswith("/login"), action
    # Not a session the owner sees in their list either.
    assert (await owner.get("/settings")).text.count("session-device") == 1


async def test_a_pending_sign_in_ends_after_ten_minutes(db_web, browsers, clock):
    email, *_ = await _signed_up_with_2fa(db_web, browsers, clock)
    browser = browsers(db_web)
    await browser.sign_in(email)
    clock.advance(10 * 60 + 1)
    assert (await browser.get("/login/2fa")).headers["location"] == "/login"


async def test_a_backup_code_signs_in_once(db_web, browsers, clock):
    email, _, _, codes = await _signed_up_with_2fa(db_web, browsers, clock)
    browser = browsers(db_web)
    await browser.sign_in(email)
    done = await _second_factor(browser, codes[0].upper(), field="backup_code")
    assert done.status_code == 303
    again = browsers(db_web)
    await again.sign_in(email)
    refused = await _second_factor(again, codes[0], field="backup_code")
    assert refused.status_code == 401 and "That code is not right" in refused.text
    assert (await _second_factor(again, codes[1], field="backup_code")).status_code == 303
    assert "8 of 10 backup codes left" in (await again.get("/settings")).text


async def test_the_same_totp_code_does_not_work_twice(db_web, browsers, clock):
    email, _, secret, _ = await _signed_up_with_2fa(db_web, browsers, clock)
    code = code_at(secret, clock.now)
    first = browsers(db_web)
    await first.sign_in(email)
    assert (await _second_factor(first, code)).status_code == 303
    replay = browsers(db_web)
    await replay.sign_in(email)
    refused = await _second_factor(replay, code)
    assert refused.status_code == 401
    # An earlier step's code is refused too once a later one was used.
    assert (await _second_factor(replay, code_at(secret, clock.now - STEP))).status_code == 401
    clock.advance(STEP)
    assert (await _second_factor(replay, code_at(secret, clock.now))).status_code == 303


async def test_wrong_codes_are_throttled_per_user(db_web, browsers, clock):
    email, _, secret, _ = await _signed_up_with_2fa(db_web, browsers, clock)
    wrong = str((int(code_at(secret, clock.now)) + 500_000) % 1_000_000).zfill(6)
    for _ in range(5):
        browser = browsers(db_web)  # a new pending sign-in each time: the count is the user's
        await browser.sign_in(email)
        assert (await _second_factor(browser, wrong)).status_code == 401
    browser = browsers(db_web)
    await browser.sign_in(email)
    blocked = await _second_factor(browser, code_at(secret, clock.now))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Too many attempts" in blocked.text
    clock.advance(15 * 60 + 1)
    browser = browsers(db_web)
    await browser.sign_in(email)
    assert (await _second_factor(browser, code_at(secret, clock.now))).status_code == 303


# -- step-up ---------------------------------------------------------------------------------


async def test_turning_it_off_needs_the_password_and_a_code(db_web, browsers, clock):
    email, browser, secret, _ = await _signed_up_with_2fa(db_web, browsers, clock)
    page = await browser.get("/settings/2fa/disable")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.text
    for data, field in (
        ({}, "current_password"),
        ({"current_password": "wrong password here", "code": code_at(secret, clock.now)}, None),
        ({"current_password": PASSWORD}, "code"),
        ({"current_password": PASSWORD, "code": "123"}, "code"),
    ):
        refused = await browser.submit("/settings/2fa/disable", "/settings/2fa/disable", data)
        assert refused.status_code in (400, 401), (data, refused.status_code)
        if field:
            assert f'id="f-{field}-error"' in refused.text, data
        assert (await _user(db_web, email)).totp_enabled_at is not None
    done = await browser.submit(
        "/settings/2fa/disable",
        "/settings/2fa/disable",
        {"current_password": PASSWORD, "code": code_at(secret, clock.now)},
    )
    assert done.status_code == 303 and "done=two_factor_off" in done.headers["location"]
    user = await _user(db_web, email)
    assert user.totp_enabled_at is None and user.totp_secret is None
    async with db_web.rt.db.read() as session:
        assert not (await session.execute(select(BackupCode))).scalars().all()
    assert any("is off" in m.subject for m in await mail_to(db_web.rt, email))
    # Signing in is one step again.
    again = browsers(db_web)
    assert (await again.sign_in(email)).headers["location"] == "/settings"


async def test_new_backup_codes_need_a_step_up_and_replace_the_old(db_web, browsers, clock):
    email, browser, _, codes = await _signed_up_with_2fa(db_web, browsers, clock)
    refused = await browser.submit(
        "/settings/2fa/backup-codes", "/settings/2fa/backup-codes", {"current_password": PASSWORD}
    )
    assert refused.status_code in (400, 401) and not BACKUP_CODE.findall(refused.text)
    done = await browser.submit(
        "/settings/2fa/backup-codes",
        "/settings/2fa/backup-codes",
        {"current_password": PASSWORD, "backup_code": codes[0]},
    )
    assert done.status_code == 200
    fresh = BACKUP_CODE.findall(done.text)
    assert len(set(fresh)) == 10 and not set(fresh) & set(codes)
    other = browsers(db_web)
    await other.sign_in(email)
    assert (await _second_factor(other, codes[1], field="backup_code")).status_code == 401
    assert (await _second_factor(other, fresh[0], field="backup_code")).status_code == 303


async def test_the_enrolment_code_cannot_sign_in_again(db_web, browsers, clock):
    email = new_email()
    owner = browsers(db_web)
    await owner.sign_up(email)
    secret, _ = await turn_on(owner, clock.now)
    browser = browsers(db_web)
    await browser.sign_in(email)
    assert (await _second_factor(browser, code_at(secret, clock.now))).status_code == 401


async def test_setup_pages_refuse_when_already_on(db_web, browsers, clock):
    _, browser, _, _ = await _signed_up_with_2fa(db_web, browsers, clock)
    again = await browser.submit("/settings", "/settings/2fa/setup", {})
    assert again.status_code == 409
    assert (await browser.get("/settings/2fa")).headers["location"] == "/settings#two-factor"


async def test_sessions_list_hides_pending_rows(db_web, browsers, clock):
    email, owner, *_ = await _signed_up_with_2fa(db_web, browsers, clock)
    await browsers(db_web).sign_in(email)
    async with db_web.rt.db.read() as session:
        rows = (await session.execute(select(WebSession))).scalars().all()
    assert sorted(r.awaiting_second_factor for r in rows) == [False, True]
    assert (await owner.get("/settings")).text.count("session-device") == 1


# -- codes -----------------------------------------------------------------------------------


def test_a_code_counts_one_step_either_side_and_only_after_the_last_used():
    from reapi_server.identity import totp

    secret = totp.new_secret()
    now = 1_800_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        code = code_at(secret, now + offset * STEP)
        assert totp.matching_step(secret, code, now, after=None) == step + offset
        assert totp.matching_step(secret, code[:3] + " " + code[3:], now, after=None)
    assert totp.matching_step(secret, code_at(secret, now - 2 * STEP), now, after=None) is None
    assert totp.matching_step(secret, code_at(secret, now + 2 * STEP), now, after=None) is None
    assert totp.matching_step(secret, code_at(secret, now), now, after=step) is None
    assert totp.matching_step(secret, code_at(secret, now + STEP), now, after=step) == step + 1
    assert totp.matching_step(secret, "12345", now, after=None) is None
    assert totp.matching_step(secret, "abcdef", now, after=None) is None


def test_backup_codes_read_as_typed():
    from reapi_server.identity import backup_codes

    codes = backup_codes.generate()
    assert len(set(codes)) == 10
    for code in codes:
        raw = code.replace("-", "")
        assert backup_codes.normalise(code.upper()) == raw
        assert backup_codes.normalise(f" {code[:5]} {code[6:]} ") == raw
    assert backup_codes.normalise("abcde-fghj") is None
    assert backup_codes.normalise("abcde-fghjl") is None  # l is not in the alphabet
