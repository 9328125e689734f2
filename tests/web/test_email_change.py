"""Changing the email address: behind a step-up, a link to the new address (24 hours, single
use, bound to that address), a notice to the old one; the change ends every other session and
tells the old address. Password and email changes both mail the owner. SQLite and PostgreSQL."""

from __future__ import annotations

from tests.web.helpers import PASSWORD, mail_to, new_email, web_context
from tests.web.two_factor_helpers import code_at, turn_on

DAY = 86_400


async def _ask(browser, data):
    return await browser.submit("/settings/email", "/settings/email", data)


async def _confirm(browser, link, token):
    return await browser.submit(link, "/settings/email/confirm", {"token": token})


async def test_without_the_password_nothing_is_sent(db_web, browsers):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    for data in ({"email": new}, {"email": new, "current_password": "not my password at all"}):
        refused = await _ask(browser, data)
        assert refused.status_code in (400, 401)
        assert 'id="f-current_password-error"' in refused.text
    assert await mail_to(db_web.rt, new) == []


async def test_with_2fa_on_the_change_needs_a_code_too(db_web, browsers, clock):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    secret, _ = await turn_on(browser, clock.now)
    clock.advance(30)
    page = await browser.get("/settings/email")
    assert 'inputmode="numeric"' in page.text and 'autocomplete="one-time-code"' in page.text
    refused = await _ask(browser, {"email": new, "current_password": PASSWORD})
    assert refused.status_code == 400 and 'id="f-code-error"' in refused.text
    assert await mail_to(db_web.rt, new) == []
    done = await _ask(
        browser, {"email": new, "current_password": PASSWORD, "code": code_at(secret, clock.now)}
    )
    assert done.status_code == 303
    assert [m.subject for m in await mail_to(db_web.rt, new)] == [
        "Confirm your new email address for reapi"
    ]


async def test_a_bad_address_is_refused_before_any_step_up(db_web, browsers):
    email = new_email()
    taken = new_email()
    await browsers(db_web).sign_up(taken)
    browser = browsers(db_web)
    await browser.sign_up(email)
    for address, message in (
        ("not an address", "Enter an email address"),
        (email, "already your email address"),
        (taken, "already exists"),
    ):
        refused = await _ask(browser, {"email": address, "current_password": PASSWORD})
        assert refused.status_code in (400, 409) and message in refused.text, address


async def test_asking_whether_addresses_have_accounts_is_limited_per_user(db_web, browsers, clock):
    """The new address is checked before any step-up, and "already exists" tells whether it has
    an account: each such answer counts towards the user's 5 email changes an hour, or any
    signed-in person (an unverified one too) could test every address they like."""
    taken = [new_email() for _ in range(6)]
    for address in taken:
        await browsers(db_web).sign_up(address)
        clock.advance(60 * 60 + 1)  # past the sign-up limit per client address
    browser = browsers(db_web)
    await browser.sign_up(new_email())
    answers = [(await _ask(browser, {"email": a})).status_code for a in taken]
    assert answers == [409] * 5 + [429]
    blocked = await _ask(browser, {"email": new_email(), "current_password": PASSWORD})
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    assert "already exists" not in blocked.text
    clock.advance(60 * 60 + 1)
    assert (await _ask(browser, {"email": taken[0]})).status_code == 409


async def test_the_link_changes_the_email_once_and_ends_other_sessions(db_web, browsers):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    other = browsers(db_web)
    await other.sign_in(email)
    asked = await _ask(browser, {"email": new, "current_password": PASSWORD})
    assert asked.status_code == 303 and "done=email_change_sent" in asked.headers["location"]
    # The old address is told at once, the new one gets the link.
    [notice] = [m for m in await mail_to(db_web.rt, email) if "being changed" in m.subject]
    assert new in notice.text
    [mail] = await mail_to(db_web.rt, new)
    link = mail.link("/settings/email/confirm")
    page = await browser.get(link)
    assert page.status_code == 200 and new in page.text  # looking does not use it
    assert (await browser.get(link)).status_code == 200
    before = browser.cookie("reapi_session")
    done = await _confirm(browser, link, mail.token("/settings/email/confirm"))
    assert done.status_code == 303 and "done=email_changed" in done.headers["location"]
    assert browser.cookie("reapi_session") != before  # a new id: a privilege change
    settings = await browser.get("/settings")
    assert settings.status_code == 200 and new in settings.text and "Verified" in settings.text
    assert (await other.get("/settings")).status_code == 303  # every other session ended
    # The old address is told it happened; it no longer signs in, the new one does.
    assert any("was changed" in m.subject for m in await mail_to(db_web.rt, email))
    assert (await browsers(db_web).sign_in(email)).status_code == 401
    assert (await browsers(db_web).sign_in(new)).status_code == 303
    # Used once.
    again = await browsers(db_web).submit(
        "/login", "/settings/email/confirm", {"token": mail.token("/settings/email/confirm")}
    )
    assert again.status_code == 400 and "no longer works" in again.text


async def test_a_link_opened_elsewhere_ends_every_session(db_web, browsers):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await _ask(browser, {"email": new, "current_password": PASSWORD})
    [mail] = await mail_to(db_web.rt, new)
    phone = browsers(db_web)
    link = mail.link("/settings/email/confirm")
    done = await _confirm(phone, link, mail.token("/settings/email/confirm"))
    assert done.status_code == 303 and done.headers["location"].startswith("/login?done=")
    assert (await browser.get("/settings")).status_code == 303


async def test_an_expired_or_tampered_link_changes_nothing(db_web, browsers, clock):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await _ask(browser, {"email": new, "current_password": PASSWORD})
    [mail] = await mail_to(db_web.rt, new)
    token = mail.token("/settings/email/confirm")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, token[:20], "", token + "x"):
        refused = await browser.submit("/settings", "/settings/email/confirm", {"token": bad})
        assert refused.status_code == 400, bad
        page = await browser.get(f"/settings/email/confirm?token={bad}")
        assert page.status_code == 400 and "no longer works" in page.text
    clock.advance(DAY + 1)
    expired = await browser.submit("/settings", "/settings/email/confirm", {"token": token})
    assert expired.status_code == 400
    assert email in (await browser.get("/settings")).text
    assert (await browsers(db_web).sign_in(email)).status_code == 303


async def test_a_new_request_replaces_the_earlier_link(db_web, browsers, clock):
    email, first, second = new_email(), new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await _ask(browser, {"email": first, "current_password": PASSWORD})
    await _ask(browser, {"email": second, "current_password": PASSWORD})
    [old_mail] = await mail_to(db_web.rt, first)
    refused = await browser.submit(
        "/settings", "/settings/email/confirm", {"token": old_mail.token("/settings/email/confirm")}
    )
    assert refused.status_code == 400


async def test_a_reset_link_sent_to_the_old_address_stops_working(db_web, browsers):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await browsers(db_web).submit("/reset", "/reset", {"email": email})
    [reset] = [m for m in await mail_to(db_web.rt, email) if "Reset" in m.subject]
    await _ask(browser, {"email": new, "current_password": PASSWORD})
    [mail] = await mail_to(db_web.rt, new)
    await _confirm(
        browser, mail.link("/settings/email/confirm"), mail.token("/settings/email/confirm")
    )
    page = await browsers(db_web).get(reset.link("/reset/confirm"))
    assert page.status_code == 400


async def test_a_new_password_cancels_a_pending_change(db_web, browsers):
    """Someone who knew the password asked to move the account to their address; its owner
    changes the password (or resets it) to lock them out: the link no longer works, so it
    cannot take the account back within its 24 hours."""
    new_password = "a brand new passphrase 77"
    for how in ("change", "reset"):
        email, theirs = new_email(), new_email()
        owner, intruder = browsers(db_web), browsers(db_web)
        await owner.sign_up(email)
        await intruder.sign_in(email)
        await _ask(intruder, {"email": theirs, "current_password": PASSWORD})
        await browsers(db_web).submit("/reset", "/reset", {"email": email})
        [change] = await mail_to(db_web.rt, theirs)
        [reset] = [m for m in await mail_to(db_web.rt, email) if "Reset" in m.subject]
        if how == "change":
            form = {"current_password": PASSWORD, "password": new_password}
            assert (await owner.submit("/settings", "/settings/password", form)).status_code == 303
            # The reset link asked before the change stops working too.
            assert (await browsers(db_web).get(reset.link("/reset/confirm"))).status_code == 400
        else:
            link = reset.link("/reset/confirm")
            form = {"token": reset.token("/reset/confirm"), "password": new_password}
            assert (await owner.submit(link, "/reset/confirm", form)).status_code == 303
        assert (
            await browsers(db_web).get(change.link("/settings/email/confirm"))
        ).status_code == 400
        token = change.token("/settings/email/confirm")
        refused = await browsers(db_web).submit(
            "/login", "/settings/email/confirm", {"token": token}
        )
        assert refused.status_code == 400 and "no longer works" in refused.text, how
        assert (await browsers(db_web).sign_in(email, new_password)).status_code == 303


async def test_the_address_taken_meanwhile_is_refused_at_the_link(db_web, browsers):
    email, new = new_email(), new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await _ask(browser, {"email": new, "current_password": PASSWORD})
    await browsers(db_web).sign_up(new)
    mails = [m for m in await mail_to(db_web.rt, new) if "new email" in m.subject]
    refused = await _confirm(
        browser, mails[0].link("/settings/email/confirm"), mails[0].token("/settings/email/confirm")
    )
    assert refused.status_code == 409 and "Another account uses this address" in refused.text
    assert email in (await browser.get("/settings")).text


async def test_change_requests_are_limited_per_user(db_web, browsers):
    browser = browsers(db_web)
    await browser.sign_up(new_email())
    for _ in range(5):
        ok = await _ask(browser, {"email": new_email(), "current_password": PASSWORD})
        assert ok.status_code == 303
    blocked = await _ask(browser, {"email": new_email(), "current_password": PASSWORD})
    assert blocked.status_code == 429 and "retry-after" in blocked.headers


async def test_a_user_without_a_password_steps_up_by_a_recent_sign_in(db_web, browsers, clock):
    """No password (operator-created or OAuth only): a sign-in in the last ten minutes is
    the proof; later, the page asks them to sign in again and refuses."""
    from reapi_server.accounts.service import create_account
    from reapi_server.identity.sessions import Client

    email, new = new_email(), new_email()
    async with db_web.rt.db.write() as session:
        await create_account(session, email, credits_granted=0, now=clock.now)
    identity = web_context(db_web).identity
    async with db_web.rt.db.read() as session:
        from reapi_server.identity import repository

        user = await repository.find_user_by_email(session, email)
    async with db_web.rt.db.write() as session:  # the consent page, passed (operator-made)
        await repository.insert_consents(session, user.id, identity.config.consents(), clock.now)
    signed_in = await identity.start_session(user, Client("127.0.0.1", "test"))
    browser = browsers(db_web)
    browser.client.cookies.set("reapi_session", signed_in.token)
    page = await browser.get("/settings/email")
    assert page.status_code == 200 and 'name="current_password"' not in page.text
    clock.advance(11 * 60)
    late = await browser.get("/settings/email")
    assert "sign in again" in late.text
    refused = await _ask(browser, {"email": new})
    assert refused.status_code == 401 and "sign in again" in refused.text
    assert await mail_to(db_web.rt, new) == []
    fresh = await identity.start_session(user, Client("127.0.0.1", "test"))
    browser.client.cookies.set("reapi_session", fresh.token)
    assert (await _ask(browser, {"email": new})).status_code == 303
    assert len(await mail_to(db_web.rt, new)) == 1
