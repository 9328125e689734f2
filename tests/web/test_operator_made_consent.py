"""A person whose account an operator made (`reapi-server accounts create`) was never
asked what both ways of signing up ask: 16 or older, the terms and the privacy policy.
At their first sign-in they confirm both before any other page works (before, they went
straight to their settings, keys and billing with neither shown nor recorded)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from tests.server.helpers import auth
from tests.web.helpers import PASSWORD as PASSWORD_OF_SIGN_UP
from tests.web.helpers import mail_to, new_email

from reapi_server.accounts.service import account_of, create_account
from reapi_server.api_keys.service import keys_service
from reapi_server.identity import repository as users
from reapi_server.legal.documents import policy_versions
from reapi_server.models import Consent

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


# -- a policy's new version ----------------------------------------------------------------------


async def _accepted_an_older_privacy_policy(gateway, email: str) -> None:
    """As every person who signed up before the privacy policy's version moved."""
    async with gateway.rt.db.write() as session:
        user = await users.find_user_by_email(session, email)
        await session.execute(
            update(Consent)
            .where(Consent.user_id == user.id, Consent.kind == "privacy")
            .values(policy_version="2026-12-06")
        )


async def test_a_new_privacy_policy_version_is_accepted_before_the_dashboard(web, browsers):
    """The privacy policy's version moved (2026-12-06 → 2026-12-07, every kind of row kept is
    listed, deletion detaches the audit rows):
    a person who accepted the older one is asked once for the new one (not their age again),
    and their API keys keep working meanwhile (the gate is the dashboard's, as docs say).
    Before, any version of a policy counted as accepted: nobody was asked."""
    assert policy_versions(None)["privacy"] == "2026-12-07"
    email = new_email()
    browser = browsers(web)
    await browser.sign_up(email)
    async with web.rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
        account = await account_of(session, user.id)
    model = await keys_service(web.rt).create(account.id, name="app")
    management = await keys_service(web.rt).create(account.id, name="ops", kind="management")
    await _accepted_an_older_privacy_policy(web, email)

    held = await browser.get("/dashboard/keys")
    assert held.status_code == 303
    assert held.headers["location"] == CONSENT + "?next=%2Fdashboard%2Fkeys"
    page = await browser.get(held.headers["location"])
    assert page.status_code == 200 and "We updated our policies" in page.text
    assert '<a href="/legal/privacy">privacy policy</a>' in page.text
    assert "terms of service</a> since" not in page.text  # the terms did not change
    assert 'name="age_16_plus"' not in page.text  # asked at sign-up; it has no version

    api = browsers(web).client
    assert (await api.get("/api/keys", headers=auth(management.plaintext))).status_code == 200
    assert (await api.get("/v1/models", headers=auth(model.plaintext))).status_code == 200

    refused = await browser.submit(CONSENT, CONSENT, {})
    assert refused.status_code == 400 and "Accept the terms and the privacy policy" in refused.text
    accepted = await browser.submit(
        CONSENT, CONSENT, {"accept_terms": "yes", "next": "/dashboard/keys"}
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/dashboard/keys"
    assert (await browser.get("/dashboard/keys")).status_code == 200
    async with web.rt.db.read() as session:
        given = await users.consents_given(session, user.id)
    assert ("privacy", "2026-12-07") in given and ("privacy", "2026-12-06") in given  # history


async def test_a_person_who_will_not_accept_can_still_download_their_data_and_leave(web, browsers):
    """Neither the download of one's data nor the account's deletion waits for an acceptance:
    someone who refuses a policy's new version (or an operator-made account's person who is
    not 16) must not have to say yes to it to leave. Before, both pages sent them to the
    consent page."""
    email = new_email()
    browser = browsers(web)
    await browser.sign_up(email)
    await _accepted_an_older_privacy_policy(web, email)
    assert (await browser.get("/dashboard")).headers["location"].startswith(CONSENT)
    page = await browser.get(CONSENT)
    assert 'href="/settings/data/export.json"' in page.text
    assert 'href="/settings/delete"' in page.text

    export = await browser.get("/settings/data/export.json")
    assert export.status_code == 200 and email in export.text
    assert (await browser.get("/settings/data/usage.csv")).status_code == 200
    assert (await browser.get("/settings/delete")).status_code == 200
    await _delete_account(web, browser, email, PASSWORD_OF_SIGN_UP)


async def test_an_operator_made_person_can_delete_the_account_without_confirming_anything(
    web, browsers
):
    email = new_email()
    await _operator_made_with_a_password(web, browsers, email)
    browser = browsers(web)
    await browser.sign_in(email, PASSWORD)
    await _delete_account(web, browser, email, PASSWORD)


async def _delete_account(web, browser, email: str, password: str) -> None:
    """Settings → Delete account, confirmed with the address and password: the person is gone."""
    deleted = await browser.submit(
        "/settings/delete",
        "/settings/delete",
        {"confirmation": email, "current_password": password},
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/login?done=account_deleted"
    async with web.rt.db.read() as session:
        assert await users.find_user_by_email(session, email) is None


async def test_an_operator_made_account_s_keys_work_before_anyone_confirmed_16_or_older(web):
    """The design the operator vouches for: the age question is the dashboard's, so the keys of
    an account `accounts create` made call /v1 with no consent recorded. docs/accounts.md says
    so where it describes these accounts (before, it said only that the keys "work as before",
    not that nobody had confirmed the person's age)."""
    email = new_email()
    async with web.rt.db.write() as session:
        account = await create_account(session, email, credits_granted=5, now=web.rt.now())
    key = await keys_service(web.rt).create(account.id, name="app")
    assert (await web.client.get("/v1/credits", headers=auth(key.plaintext))).status_code == 200
    assert await _consents(web, email) == set()

    page = (Path(__file__).parents[2] / "docs" / "accounts.md").read_text()
    section = page.split("### Accounts an operator makes", 1)[1].split("\n## ", 1)[0]
    said = " ".join(section.split())
    assert "nobody has confirmed that the person is 16 or older before their keys work" in said
    assert "the operator takes on" in said and "reapi-server users show" in said
