"""The newsletter choice: at sign-up as the operator configures, in Settings → Notifications, and
the RFC 8058 one-click unsubscribe (a POST with no cookie and no CSRF token; a GET only shows a
button). Newsletter headers only on newsletters; transactional mail whatever the choice."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.web.helpers import deletion_services, deliver, mail_to, new_email, web_context

from reapi_server.email import Message, enqueue
from reapi_server.email.markdown import render_markdown
from reapi_server.identity import repository as users
from reapi_server.models import OutboxMessage

BASE_URL = "http://gateway.test"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def _user(gateway, email):
    async with gateway.rt.db.read() as session:
        return await users.find_user_by_email(session, email)


async def _sign_up(browser, email, *, newsletter: bool | None):
    data = {
        "email": email,
        "password": "correct horse battery staple 42",
        "age_16_plus": "yes",
        "accept_terms": "yes",
    }
    if newsletter:
        data["newsletter"] = "yes"
    response = await browser.submit("/signup", "/signup", data)
    assert response.status_code == 303, response.text
    return response


def _checkbox(html: str) -> re.Match[str] | None:
    return re.search(r'<input id="f-newsletter" name="newsletter" type="checkbox"[^>]*>', html)


@pytest.mark.parametrize(
    ("default", "shown", "ticked"),
    [("opt_in", True, False), ("opt_out", True, True), ("off", False, False)],
)
async def test_the_sign_up_box_follows_the_operator_setting(
    make_gateway, browsers, default, shown, ticked
):
    gateway = await make_gateway(public_base_url=BASE_URL, newsletter_default=default)
    page = await browsers(gateway).get("/signup")
    box = _checkbox(page.text)
    assert (box is not None) is shown
    if box is not None:
        assert ("checked" in box.group(0)) is ticked


@pytest.mark.parametrize("default", ["opt_in", "opt_out"])
async def test_the_choice_at_sign_up_is_kept(make_gateway, browsers, default):
    gateway = await make_gateway(public_base_url=BASE_URL, newsletter_default=default)
    yes, no = new_email(), new_email()
    await _sign_up(browsers(gateway), yes, newsletter=True)
    await _sign_up(browsers(gateway), no, newsletter=False)  # an unticked box sends nothing
    assert (await _user(gateway, yes)).newsletter is True
    assert (await _user(gateway, no)).newsletter is False


async def test_off_means_no_newsletter_whatever_is_posted(make_gateway, browsers):
    gateway = await make_gateway(public_base_url=BASE_URL, newsletter_default="off")
    email = new_email()
    browser = browsers(gateway)
    await _sign_up(browser, email, newsletter=True)
    assert (await _user(gateway, email)).newsletter is False
    settings = await browser.get("/settings")
    assert 'name="newsletter"' not in settings.text
    refused = await browser.submit(
        "/settings", "/settings/notifications/newsletter", {"newsletter": "yes"}
    )
    assert refused.status_code == 404
    assert (await _user(gateway, email)).newsletter is False


async def test_the_choice_changes_in_settings(db_web, browsers):
    browser = browsers(db_web)
    email = new_email()
    await _sign_up(browser, email, newsletter=False)
    settings = await browser.get("/settings")
    assert 'id="notifications"' in settings.text and 'href="#notifications"' in settings.text
    response = await browser.submit(
        "/settings", "/settings/notifications/newsletter", {"newsletter": "yes"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings?done=newsletter_on#notifications"
    assert (await _user(db_web, email)).newsletter is True
    page = await browser.get(response.headers["location"])
    assert "You will receive the newsletter" in page.text
    assert "checked" in _checkbox(page.text).group(0)
    response = await browser.submit("/settings", "/settings/notifications/newsletter", {})
    assert response.headers["location"] == "/settings?done=newsletter_off#notifications"
    assert (await _user(db_web, email)).newsletter is False


async def test_the_settings_form_needs_its_csrf_token(web, browsers):
    browser = browsers(web)
    email = new_email()
    await _sign_up(browser, email, newsletter=False)
    refused = await browser.client.post(
        "/settings/notifications/newsletter", data={"newsletter": "yes"}
    )
    assert refused.status_code == 403
    assert (await _user(web, email)).newsletter is False


def _newsletter(gateway, user) -> Message:
    web = web_context(gateway)
    composer = web.identity.mail
    return composer.newsletter(
        user.email,
        subject="News",
        body=render_markdown("Hello **there**."),
        unsubscribe=web.subscriptions.token(user.id),
    )


async def test_newsletter_headers_on_newsletters_only(db_web, browsers):
    email = new_email()
    browser = browsers(db_web)
    await _sign_up(browser, email, newsletter=True)
    user = await _user(db_web, email)
    token = web_context(db_web).subscriptions.token(user.id)
    async with db_web.rt.db.write() as session:
        await enqueue(session, _newsletter(db_web, user), db_web.rt.now())
    await browser.submit("/reset", "/reset", {"email": email})
    mails = await mail_to(db_web.rt, email)
    [news] = [m for m in mails if m.subject == "News"]
    assert news.headers["List-Unsubscribe"] == f"<{BASE_URL}/unsubscribe/{token}>"
    assert news.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"{BASE_URL}/unsubscribe/{token}" in news.text and "<strong>there</strong>" in news.html
    transactional = [m for m in mails if m.subject != "News"]
    assert {m.subject.split(":")[0] for m in transactional} == {
        "Confirm your email address",
        "Reset your reapi password",
    }
    for mail in transactional:
        assert "List-Unsubscribe" not in mail.headers
        assert "List-Unsubscribe-Post" not in mail.headers
        assert "/unsubscribe/" not in mail.text


async def test_every_composed_transactional_message_lacks_the_headers(web):
    composer = web_context(web).identity.mail
    from datetime import date

    body = render_markdown("text")
    for message in (
        composer.welcome("a@example.com", "t"),
        composer.welcome("a@example.com", None),
        composer.verify_email("a@example.com", "t"),
        composer.reset_password("a@example.com", "t"),
        composer.password_changed("a@example.com", 1.0),
        composer.account_deleted("a@example.com", 1.0),
        composer.policy_change("a@example.com", subject="S", effective=date(2030, 1, 1), body=body),
    ):
        assert message.kind == "transactional" and dict(message.headers) == {}, message


async def test_a_mailto_is_offered_when_a_mailbox_is_configured(make_gateway):
    gateway = await make_gateway(
        public_base_url=BASE_URL, newsletter_unsubscribe_mailto="leave@reapi.test"
    )
    message = web_context(gateway).identity.mail.newsletter(
        "a@example.com", subject="S", body=render_markdown("x"), unsubscribe="user_1.tok"
    )
    assert message.headers["List-Unsubscribe"] == (
        f"<{BASE_URL}/unsubscribe/user_1.tok>, "
        "<mailto:leave@reapi.test?subject=unsubscribe%20user_1.tok>"
    )


async def _subscribed(gateway, browsers) -> tuple[str, str]:
    email = new_email()
    await _sign_up(browsers(gateway), email, newsletter=True)
    user = await _user(gateway, email)
    return email, web_context(gateway).subscriptions.token(user.id)


def _mail_client(gateway) -> httpx.AsyncClient:
    """A mail provider's server: no cookies, no CSRF token, another origin."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url=BASE_URL,
        headers={"origin": "https://mail.example", "sec-fetch-site": "cross-site"},
    )


async def test_one_click_post_unsubscribes_without_cookie_or_csrf(db_web, browsers):
    email, token = await _subscribed(db_web, browsers)
    async with _mail_client(db_web) as client:
        response = await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert (await _user(db_web, email)).newsletter is False
    async with _mail_client(db_web) as client:  # again: still fine, nothing changes
        assert (await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)).status_code == 200


async def test_get_shows_a_button_and_unsubscribes_nobody(db_web, browsers):
    email, token = await _subscribed(db_web, browsers)
    async with _mail_client(db_web) as scanner:
        page = await scanner.get(f"/unsubscribe/{token}")
        head = await scanner.head(f"/unsubscribe/{token}")
    assert page.status_code == 200 and head.status_code in (200, 405)
    assert email in page.text
    assert f'<form method="post" action="/unsubscribe/{token}"' in page.text
    assert (await _user(db_web, email)).newsletter is True
    # The page's own button posts to the same address (a person without a session).
    button = await browsers(db_web).client.post(f"/unsubscribe/{token}", data={})
    assert button.status_code == 200
    assert (await _user(db_web, email)).newsletter is False


async def test_a_token_unsubscribes_only_its_own_user(db_web, browsers):
    ada, ada_token = await _subscribed(db_web, browsers)
    bob, bob_token = await _subscribed(db_web, browsers)
    ada_id, _, ada_mac = ada_token.partition(".")
    bob_id, _, bob_mac = bob_token.partition(".")
    forged = [
        f"{bob_id}.{ada_mac}",  # Ada's proof on Bob's id
        f"{ada_id}.{bob_mac}",
        f"{bob_id}.{bob_mac[:-1]}{'A' if bob_mac[-1] != 'A' else 'B'}",
        bob_id,
        "user_0.x",
    ]
    async with _mail_client(db_web) as client:
        for token in forged:
            response = await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
            assert response.status_code == 404, token
            assert (await client.get(f"/unsubscribe/{token}")).status_code == 404
            assert bob not in response.text
        assert (await _user(db_web, ada)).newsletter is True
        assert (await _user(db_web, bob)).newsletter is True
        await client.post(f"/unsubscribe/{ada_token}", data=ONE_CLICK)
    assert (await _user(db_web, ada)).newsletter is False
    assert (await _user(db_web, bob)).newsletter is True
    assert ada_token != bob_token


async def test_after_opting_out_transactional_mail_still_goes_and_queued_news_does_not(
    db_web, browsers
):
    email, token = await _subscribed(db_web, browsers)
    user = await _user(db_web, email)
    await deliver(db_web.rt)  # the sign-up mail
    async with db_web.rt.db.write() as session:
        await enqueue(session, _newsletter(db_web, user), db_web.rt.now())
    async with _mail_client(db_web) as client:
        await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    async with db_web.rt.db.read() as session:
        from sqlalchemy import select

        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert {r.kind for r in rows} == {"transactional"}  # the queued newsletter is gone
    browser = browsers(db_web)
    await browser.submit("/reset", "/reset", {"email": email})
    mails = await mail_to(db_web.rt, email)
    assert [m.subject for m in mails if "Reset" in m.subject] == ["Reset your reapi password"]
    assert not [m for m in mails if m.subject == "News"]


async def test_the_unsubscribe_page_of_a_deleted_user_is_a_404(web, browsers):
    email, token = await _subscribed(web, browsers)
    user = await _user(web, email)
    from reapi_server.accounts.deletion import delete_user

    async with web.rt.db.write() as session:
        await delete_user(session, user.id, now=web.rt.now(), **deletion_services(web))
    async with _mail_client(web) as client:
        assert (await client.get(f"/unsubscribe/{token}")).status_code == 404
        assert (await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)).status_code == 404


async def test_the_unsubscribe_form_needs_no_token_but_other_forms_still_do(web, browsers):
    _, token = await _subscribed(web, browsers)
    browser = browsers(web)
    page = await browser.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and 'name="csrf_token"' not in page.text
    async with _mail_client(web) as client:
        assert (await client.post("/unsubscribe", data=ONE_CLICK)).status_code in (403, 404, 405)
        assert (await client.post("/settings/notifications/newsletter")).status_code == 403
