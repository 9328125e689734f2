"""A person whose account an operator made (`reapi-server accounts create`) was never
asked what both ways of signing up ask: 16 or older, the terms and the privacy policy.
At their first sign-in they confirm both before any other page works (before, they went
straight to their settings, keys and billing with neither shown nor recorded)."""

from __future__ import annotations

from tests.web.helpers import mail_to, new_email

from reapi_server.accounts.service import create_account
from reapi_server.identity import repository as users

PASSWORD = "a brand new passphrase 77"
CONSENT = "/login/consent"


async def _operator_made_with_a_password(gateway, browsers, email):
    """As `accounts create` makes it; the person sets a password by "reset password"."""
    async with gateway.rt.db.write() as session:
        await create_account(session, email, credits_granted=5, now=gateway.rt.now())
    browser = browsers(gateway)
    await browser.submit("/reset", "/reset", {"email": email})
    [mail] = await mail_to(gateway.rt, email)
    done = await browser.submit(
        "/reset", "/reset/confirm", {"token": mail.token("/reset/confirm"), "password": PASSWORD}
    )
    assert done.status_code == 303


async def _consents(gateway, email) -> set[str]:
    async with gateway.rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
        return await users.consent_kinds(session, user.id)


async def test_an_operator_made_person_confirms_age_and_terms_before_anything_else(web, browsers):
    email = new_email()
    await _operator_made_with_a_password(web, browsers, email)
    browser = browsers(web)
    signed_in = await browser.sign_in(email, PASSWORD)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/settings"

    for page in ("/settings", "/dashboard", "/keys", "/billing", "/"):
        held = await browser.get(page)
        assert held.status_code == 303, page
        assert held.headers["location"].startswith(CONSENT + "?next="), page
    assert (await browser.get("/legal/terms")).status_code == 200  # what the box links to
    posted = await browser.submit(CONSENT, "/settings/password", {"password": "x"})
    assert posted.status_code == 303 and posted.headers["location"] == CONSENT

    page = await browser.get(f"{CONSENT}?next=/keys")
    assert page.status_code == 200
    assert "I am 16 or older" in page.text and "/legal/privacy" in page.text
    refused = await browser.submit(CONSENT, CONSENT, {"age_16_plus": "yes", "next": "/keys"})
    assert refused.status_code == 400
    assert "Accept the terms and the privacy policy" in refused.text
    assert await _consents(web, email) == set()
    assert (await browser.get("/settings")).status_code == 303  # still held

    accepted = await browser.submit(
        CONSENT, CONSENT, {"age_16_plus": "yes", "accept_terms": "yes", "next": "/keys"}
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/keys"
    assert await _consents(web, email) == {"age_16_plus", "terms", "privacy"}
    assert (await browser.get("/settings")).status_code == 200
    assert (await browser.get(CONSENT)).headers["location"] == "/settings"  # nothing left

    again = browsers(web)  # the next sign-in goes straight in
    await again.sign_in(email, PASSWORD)
    assert (await again.get("/settings")).status_code == 200


async def test_a_person_who_signed_up_is_never_asked_again(web, browsers):
    browser = browsers(web)
    await browser.sign_up(new_email())
    assert (await browser.get("/settings")).status_code == 200
    assert (await browser.get(CONSENT)).headers["location"] == "/settings"


async def test_signing_out_and_the_consent_page_itself_stay_open(web, browsers):
    email = new_email()
    await _operator_made_with_a_password(web, browsers, email)
    browser = browsers(web)
    await browser.sign_in(email, PASSWORD)
    out = await browser.submit(CONSENT, "/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/login?done=signed_out"
    assert (await browser.get(CONSENT)).headers["location"] == "/login"
