"""Password reset (enumeration-safe, single use, 1 hour, ends other sessions), password
change (ends other sessions, mails the owner), and the sign-in throttle (429 + Retry-After,
per email and per address, never for ever)."""

import time

import pytest
from sqlalchemy import select
from tests.web.helpers import PASSWORD, mail_to, new_email

from reapi_server.identity import repository as users
from reapi_server.models import AuthThrottle, UserToken

NEW_PASSWORD = "a brand new passphrase 77"


async def _request_reset(browser, email):
    return await browser.submit("/reset", "/reset", {"email": email})


async def test_reset_answers_the_same_whether_the_email_exists_or_not(db_web, browsers):
    email = new_email()
    await browsers(db_web).sign_up(email)
    browser = browsers(db_web)
    known = await _request_reset(browser, email)
    unknown = await _request_reset(browser, new_email())
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text  # the typed address is not even echoed
    assert "If an account uses that address" in known.text
    assert set(known.headers) == set(unknown.headers)
    mails = await mail_to(db_web.rt, email)
    assert [m.subject for m in mails if "Reset" in m.subject] == ["Reset your reapi password"]


async def test_reset_does_its_work_after_the_response(web, browsers, monkeypatch):
    """The lookup and the mail run as a background task: the handler's answer is the same
    object whether or not the address has an account."""
    seen = []
    identity = web.app.routes[-1].app.state.web.identity
    real = identity.send_password_reset

    async def watched(email):
        seen.append(email)
        await real(email)

    monkeypatch.setattr(identity, "send_password_reset", watched)
    browser = browsers(web)
    response = await _request_reset(browser, "  Someone@Example.com ")
    assert response.status_code == 200 and seen == ["someone@example.com"]


async def test_a_malformed_address_is_said_so(web, browsers):
    response = await _request_reset(browsers(web), "not an address")
    assert response.status_code == 400 and "Enter an email address" in response.text


async def test_reset_link_sets_a_new_password_once_and_ends_every_session(db_web, browsers):
    email = new_email()
    first = browsers(db_web)
    await first.sign_up(email)
    second = browsers(db_web)
    await second.sign_in(email)
    stranger = browsers(db_web)
    await _request_reset(stranger, email)
    [mail] = [m for m in await mail_to(db_web.rt, email) if "Reset" in m.subject]
    link = mail.link("/reset/confirm")
    assert "Choose a new password" in (await stranger.get(link)).text
    assert (await stranger.get(link)).status_code == 200  # looking does not use it
    weak = await stranger.submit(
        link, "/reset/confirm", {"token": mail.token("/reset/confirm"), "password": "short"}
    )
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    done = await stranger.submit(
        link, "/reset/confirm", {"token": mail.token("/reset/confirm"), "password": NEW_PASSWORD}
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?done=password_reset"
    for browser in (first, second):
        assert (await browser.get("/settings")).status_code == 303
    assert (await browsers(db_web).sign_in(email, PASSWORD)).status_code == 401
    assert (await browsers(db_web).sign_in(email, NEW_PASSWORD)).status_code == 303
    again = await stranger.submit(
        "/reset", "/reset/confirm", {"token": mail.token("/reset/confirm"), "password": PASSWORD}
    )
    assert again.status_code == 400 and "no longer works" in again.text
    changed = [m for m in await mail_to(db_web.rt, email) if "was changed" in m.subject]
    assert len(changed) == 1


async def test_reset_while_signed_in_keeps_this_browser_with_a_new_id(web, browsers):
    email = new_email()
    browser = browsers(web)
    await browser.sign_up(email)
    other = browsers(web)
    await other.sign_in(email)
    before = browser.cookie("reapi_session")
    await _request_reset(browser, email)
    [mail] = [m for m in await mail_to(web.rt, email) if "Reset" in m.subject]
    done = await browser.submit(
        mail.link("/reset/confirm"),
        "/reset/confirm",
        {"token": mail.token("/reset/confirm"), "password": NEW_PASSWORD},
    )
    assert done.headers["location"] == "/settings?done=password_changed"
    assert browser.cookie("reapi_session") != before
    assert (await browser.get("/settings")).status_code == 200
    assert (await other.get("/settings")).status_code == 303


async def test_reset_links_expire_after_an_hour_and_only_the_latest_works(web, browsers, clock):
    email = new_email()
    await browsers(web).sign_up(email)
    browser = browsers(web)
    await _request_reset(browser, email)
    clock.advance(60)
    await _request_reset(browser, email)
    first, second = [m for m in await mail_to(web.rt, email) if "Reset" in m.subject]
    old = await browser.submit(
        "/reset",
        "/reset/confirm",
        {"token": first.token("/reset/confirm"), "password": NEW_PASSWORD},
    )
    assert old.status_code == 400
    clock.advance(3600)
    late = await browser.submit(
        "/reset",
        "/reset/confirm",
        {"token": second.token("/reset/confirm"), "password": NEW_PASSWORD},
    )
    assert late.status_code == 400
    assert (await browsers(web).sign_in(email)).status_code == 303  # unchanged


async def test_a_reset_proves_the_address_of_an_operator_created_user(web, browsers):
    from reapi_server.accounts.service import create_account

    async with web.rt.db.write() as session:
        await create_account(session, "ops@example.com", credits_granted=0, now=web.rt.now())
    browser = browsers(web)
    await _request_reset(browser, "ops@example.com")
    [mail] = await mail_to(web.rt, "ops@example.com")
    await browser.submit(
        "/reset",
        "/reset/confirm",
        {"token": mail.token("/reset/confirm"), "password": NEW_PASSWORD},
    )
    async with web.rt.db.read() as session:
        user = await users.find_user_by_email(session, "ops@example.com")
    assert user.email_verified_at is not None and user.password_hash is not None
    assert (await browsers(web).sign_in("ops@example.com", NEW_PASSWORD)).status_code == 303


async def test_tokens_are_stored_hashed(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    [mail] = await mail_to(web.rt, email)
    token = mail.token("/verify")
    async with web.rt.db.read() as session:
        stored = (await session.execute(select(UserToken))).scalars().all()
    assert len(stored) == 1 and token not in stored[0].token_hash and len(token) >= 43


# -- change password ---------------------------------------------------------------------------


async def test_change_password_ends_other_sessions_and_mails_the_owner(db_web, browsers):
    email = new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    other = browsers(db_web)
    await other.sign_in(email)
    before = browser.cookie("reapi_session")
    wrong = await browser.submit(
        "/settings",
        "/settings/password",
        {"current_password": "not my password at all", "password": NEW_PASSWORD},
    )
    assert wrong.status_code == 401 and "current password is not right" in wrong.text
    weak = await browser.submit(
        "/settings", "/settings/password", {"current_password": PASSWORD, "password": email}
    )
    assert weak.status_code == 400 and "email address" in weak.text
    done = await browser.submit(
        "/settings", "/settings/password", {"current_password": PASSWORD, "password": NEW_PASSWORD}
    )
    assert done.status_code == 303
    assert browser.cookie("reapi_session") != before  # a new id at the privilege change
    assert (await browser.get("/settings")).status_code == 200
    assert (await other.get("/settings")).status_code == 303
    [changed] = [m for m in await mail_to(db_web.rt, email) if "was changed" in m.subject]
    assert "every other browser" in changed.text.lower() or "Every other browser" in changed.text
    assert NEW_PASSWORD not in changed.path.read_text()
    assert (await browsers(db_web).sign_in(email, NEW_PASSWORD)).status_code == 303


# -- throttling ----------------------------------------------------------------------------------


async def test_failed_sign_ins_are_throttled_per_email_then_the_window_ends(
    db_web, browsers, clock
):
    email = new_email()
    await browsers(db_web).sign_up(email)
    for _ in range(5):
        assert (await browsers(db_web).sign_in(email, "wrong password here")).status_code == 401
    blocked = await browsers(db_web).sign_in(email)  # even the right password waits
    assert blocked.status_code == 429
    retry = int(blocked.headers["retry-after"])
    assert 1 <= retry <= 15 * 60
    assert "Too many attempts" in blocked.text
    assert (await browsers(db_web).sign_in(new_email(), "whatever it is")).status_code == 401
    clock.advance(15 * 60 + 1)
    assert (await browsers(db_web).sign_in(email)).status_code == 303
    async with db_web.rt.db.read() as session:
        keys = [row.key for row in (await session.execute(select(AuthThrottle))).scalars()]
    assert all(email not in key for key in keys)  # a keyed hash, never the address


async def test_a_failed_sign_in_does_the_same_password_work_for_any_email(
    web, browsers, monkeypatch
):
    """An unknown email and an account without a password cost argon2 work too (a dummy
    hash): skipping it would tell by the answer's time which addresses have an account."""
    from reapi_server.accounts.service import create_account

    identity = web.app.routes[-1].app.state.web.identity
    real = identity.passwords.verify
    verified = []

    async def watched(stored, password):
        verified.append("real hash" if stored is not None else "dummy")
        return await real(stored, password)

    monkeypatch.setattr(identity.passwords, "verify", watched)
    email = new_email()
    await browsers(web).sign_up(email)
    async with web.rt.db.write() as session:
        await create_account(session, "nopassword@example.com", credits_granted=0, now=web.rt.now())
    for address in (email, new_email(), "nopassword@example.com"):
        response = await browsers(web).sign_in(address, "wrong password here")
        assert response.status_code == 401
    assert verified == ["real hash", "dummy", "dummy"]


async def test_failed_sign_ins_are_throttled_per_client_address(web, browsers, clock):
    victims = [new_email() for _ in range(5)]
    for _ in range(4):
        for email in victims:  # 20 failures, at most 4 per email
            assert (await browsers(web).sign_in(email, "guess guess guess")).status_code == 401
    response = await browsers(web).sign_in(new_email(), "guess guess guess")
    assert response.status_code == 429 and "retry-after" in response.headers
    clock.advance(15 * 60 + 1)
    assert (await browsers(web).sign_in(new_email(), "guess guess guess")).status_code == 401


async def test_ipv4_clients_of_a_dual_stack_listener_are_counted_each_on_its_own(web, browsers):
    """Behind a server or proxy listening on `::`, an IPv4 client comes as `::ffff:a.b.c.d`.
    Counted per IPv6 /64, every one of them was in `::/64`: one client's 20 failures locked
    every IPv4 client out of signing in (and of signing up, of resetting a password)."""
    guesser = "::ffff:203.0.113.7"
    for _ in range(20):
        guessed = await browsers(web, address=guesser).sign_in(new_email(), "guess guess guess")
        assert guessed.status_code == 401

    async def sign_in_from(address: str) -> int:
        return (await browsers(web, address=address).sign_in(new_email(), "x" * 12)).status_code

    assert await sign_in_from(guesser) == 429
    # Another IPv4 client, mapped or not, signs in as before.
    assert await sign_in_from("::ffff:198.51.100.9") == 401
    assert await sign_in_from("198.51.100.10") == 401
    # The guesser's address written as IPv4: the same client, the same count.
    assert await sign_in_from("203.0.113.7") == 429


async def test_a_successful_reset_unlocks_the_email(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    for _ in range(5):
        await browsers(web).sign_in(email, "wrong password here")
    assert (await browsers(web).sign_in(email)).status_code == 429
    browser = browsers(web)
    await _request_reset(browser, email)
    [mail] = [m for m in await mail_to(web.rt, email) if "Reset" in m.subject]
    await browser.submit(
        "/reset",
        "/reset/confirm",
        {"token": mail.token("/reset/confirm"), "password": NEW_PASSWORD},
    )
    assert (await browsers(web).sign_in(email, NEW_PASSWORD)).status_code == 303


async def test_reset_requests_are_limited_per_address(web, browsers):
    browser = browsers(web)
    for _ in range(10):
        assert (await _request_reset(browser, new_email())).status_code == 200
    limited = await _request_reset(browser, new_email())
    assert limited.status_code == 429 and "retry-after" in limited.headers


async def test_reset_mails_are_limited_per_address_silently(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    for _ in range(5):
        assert (await _request_reset(browsers(web), email)).status_code == 200
    resets = [m for m in await mail_to(web.rt, email) if "Reset" in m.subject]
    assert len(resets) == 3


@pytest.mark.parametrize("existing", [True, False])
async def test_throttled_sign_in_says_the_same_for_any_email(web, browsers, existing):
    email = new_email()
    if existing:
        await browsers(web).sign_up(email)
    for _ in range(5):
        await browsers(web).sign_in(email, "wrong password here")
    response = await browsers(web).sign_in(email, "wrong password here")
    assert response.status_code == 429


async def test_enumeration_safe_reset_timing_is_roughly_equal(live_web):
    """Against a real server: the answer for an address with an account takes about as long
    as for one without (the work happens after the response)."""
    import httpx
    from tests.web.helpers import csrf_of

    base, email = live_web

    def once(address: str) -> float:
        with httpx.Client(base_url=base) as client:
            token = csrf_of(client.get("/reset").text)
            started = time.perf_counter()
            response = client.post("/reset", data={"email": address, "csrf_token": token})
            elapsed = time.perf_counter() - started
            assert response.status_code == 200
            return elapsed

    once(new_email())  # warm up
    known = sorted(once(email) for _ in range(4))
    unknown = sorted(once(new_email()) for _ in range(4))
    median_known, median_unknown = known[1], unknown[1]
    assert abs(median_known - median_unknown) < max(
        0.05, 0.5 * max(median_known, median_unknown)
    ), (
        known,
        unknown,
    )
