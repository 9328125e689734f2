"""Sign-in with GitHub and Google against the simulated providers on loopback (real sockets, the
gateway's authlib client on one side, a person on the provider's chooser page on the other), on
SQLite and PostgreSQL: the state (missing, wrong, reused, another browser's, expired), reused
codes, cancelling, the id_token checks, the linking rules, the consent page of a new person,
linking and unlinking in Settings."""

from __future__ import annotations

import hashlib
import re
import secrets

import pytest
from sqlalchemy import func, select
from tests.web.conftest import BASE
from tests.web.helpers import PASSWORD, deletion_services, mail_to, new_email
from tests.web.oauth import (
    ADA_GITHUB,
    ADA_GOOGLE,
    GRACE_GITHUB,
    MALLORY_GITHUB,
    MALLORY_GOOGLE,
    accept_consent,
    at_provider,
    cancel_at_provider,
    local,
    query_of,
    running_providers,
    sign_in_with,
    start,
    start_again,
    start_link,
)
from tests.web.two_factor_helpers import code_at, turn_on

from reapi.testing import Fault
from reapi_server.accounts.service import account_of, create_account
from reapi_server.api_keys.service import keys_service
from reapi_server.identity import repository as users
from reapi_server.identity.housekeeping import purge_once
from reapi_server.identity.sessions import DAY, SessionPolicy
from reapi_server.models import Consent, OAuthIdentity, OAuthRequest, User, WebSession
from reapi_server.oauth import repository as identities
from reapi_server.testing.oauth_sim import FakeIdentity, GoogleSimulator

ADA = "ada@example.com"


@pytest.fixture
async def gateway(database_url, make_gateway, clock, providers):
    """A gateway with GitHub and Google sign-in, on SQLite then PostgreSQL."""
    started = await make_gateway(
        database_url=database_url, public_base_url=BASE, oauth=providers.settings()
    )
    started.rt.clock = clock
    return started


@pytest.fixture
async def sqlite_gateway(make_gateway, clock, providers):
    started = await make_gateway(public_base_url=BASE, oauth=providers.settings())
    started.rt.clock = clock
    return started


async def _count(gateway, model, *where) -> int:
    async with gateway.rt.db.read() as session:
        statement = select(func.count()).select_from(model)
        if where:
            statement = statement.where(*where)
        return int((await session.execute(statement)).scalar_one())


async def _nothing_made(gateway) -> None:
    for model in (User, OAuthIdentity, WebSession):
        assert await _count(gateway, model) == 0, model


async def _user(gateway, email) -> User | None:
    async with gateway.rt.db.read() as session:
        return await users.find_user_by_email(session, email)


async def _identities(gateway, user_id) -> list[tuple[str, str, str | None]]:
    async with gateway.rt.db.read() as session:
        rows = await identities.list_identities(session, user_id)
    return [(row.provider, row.subject, row.email) for row in rows]


async def _password_user(gateway, browsers, email, *, verified: bool):
    browser = browsers(gateway)
    await browser.sign_up(email)
    if verified:
        [mail] = await mail_to(gateway.rt, email)
        await browser.submit(mail.link("/verify"), "/verify", {"token": mail.token("/verify")})
    await browser.submit("/settings", "/logout", {})
    return await _user(gateway, email)


# -- a new person ---------------------------------------------------------------------------------


async def test_a_new_person_from_github_consents_then_has_a_verified_user_and_account(
    gateway, browsers
):
    browser = browsers(gateway)
    back = await sign_in_with(browser, "github", ADA_GITHUB)
    assert back.status_code == 303 and back.headers["location"] == "/auth/consent"
    assert browser.cookie("reapi_session") is None
    await _nothing_made(gateway)  # nothing until they accept

    page = await browser.get("/auth/consent")
    assert page.status_code == 200
    assert "signing up with GitHub" in page.text and ADA in page.text
    assert 'name="age_16_plus"' in page.text and 'name="accept_terms"' in page.text
    assert "Your email address at GitHub" in page.text and "Verified" in page.text

    refused = await browser.submit("/auth/consent", "/auth/consent", {"age_16_plus": "yes"})
    assert refused.status_code == 400 and 'id="f-accept_terms-error"' in refused.text
    await _nothing_made(gateway)

    created = await accept_consent(browser)
    assert created.status_code == 303
    assert created.headers["location"] == "/settings?done=welcome_verified"
    assert browser.cookie("reapi_session")
    user = await _user(gateway, ADA)
    assert user is not None and user.password_hash is None
    assert user.email_verified_at == gateway.rt.now()
    assert await _identities(gateway, user.id) == [("github", ADA_GITHUB, ADA)]
    async with gateway.rt.db.read() as session:
        assert await account_of(session, user.id) is not None
        consents = await users.list_consents(session, user.id)
    assert {c.kind for c in consents} == {"age_16_plus", "terms", "privacy"}
    # Verified by GitHub: the welcome, with no verification link.
    [welcome] = await mail_to(gateway.rt, ADA)
    assert welcome.subject.startswith("Welcome to") and "/verify" not in welcome.text
    assert user.newsletter is False  # opt_in (the default): the box was not ticked
    assert await _count(gateway, OAuthRequest) == 0  # the state and the pending sign-up, used

    settings = await browser.get("/settings?done=welcome_verified")
    assert "Your account is ready." in settings.text
    assert "Sign-in methods" in settings.text and "linked" in settings.text


async def test_a_new_person_from_google_is_verified_by_the_id_token(gateway, browsers, providers):
    browser = browsers(gateway)
    authorization = await start(browser, "google")
    sent = query_of(authorization)
    assert sent["code_challenge_method"] == "S256" and sent["nonce"] and sent["state"]
    assert sent["scope"] == "openid email"
    back = await browser.get(local(at_provider(authorization, ADA_GOOGLE)))
    assert back.headers["location"] == "/auth/consent"
    assert (await accept_consent(browser)).status_code == 303
    user = await _user(gateway, ADA)
    assert user.email_verified_at is not None
    assert await _identities(gateway, user.id) == [("google", ADA_GOOGLE, ADA)]
    assert providers.google.token_exchanges == 1


async def test_a_new_person_whose_provider_email_is_unverified_gets_a_verification_mail(
    gateway, browsers
):
    browser = browsers(gateway)
    await sign_in_with(browser, "github", MALLORY_GITHUB)
    page = await browser.get("/auth/consent")
    assert "Not verified" in page.text and "email it a link" in page.text
    created = await accept_consent(browser)
    assert created.headers["location"] == "/settings?done=welcome"
    user = await _user(gateway, "mallory@example.com")
    assert user.email_verified_at is None
    [mail] = await mail_to(gateway.rt, "mallory@example.com")
    assert mail.subject.startswith("Confirm your email address")
    assert mail.subject.endswith("welcome to reapi")  # the welcome, with the link
    assert mail.link("/verify")


@pytest.mark.parametrize(
    ("default", "shown", "ticked"),
    [("opt_in", True, False), ("opt_out", True, True), ("off", False, False)],
)
async def test_the_consent_page_offers_the_newsletter_as_sign_up_does(
    make_gateway, browsers, clock, providers, default, shown, ticked
):
    gateway = await make_gateway(
        public_base_url=BASE, oauth=providers.settings(), newsletter_default=default
    )
    gateway.rt.clock = clock
    browser = browsers(gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    page = await browser.get("/auth/consent")
    box = re.search(r'<input id="f-newsletter" name="newsletter" type="checkbox"[^>]*>', page.text)
    assert (box is not None) is shown
    if box is not None:
        assert ("checked" in box.group(0)) is ticked
    # What is posted decides (a box unticked posts nothing); with no newsletter, nothing does.
    created = await browser.submit(
        "/auth/consent",
        "/auth/consent",
        {"age_16_plus": "yes", "accept_terms": "yes", "newsletter": "yes"},
    )
    assert created.status_code == 303
    assert (await _user(gateway, ADA)).newsletter is shown


async def test_a_refused_consent_keeps_the_newsletter_choice(sqlite_gateway, browsers):
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    refused = await browser.submit(
        "/auth/consent", "/auth/consent", {"age_16_plus": "yes", "newsletter": "yes"}
    )
    assert refused.status_code == 400
    box = re.search(r'<input id="f-newsletter"[^>]*>', refused.text)
    assert box and "checked" in box.group(0)


async def test_cancelling_the_consent_deletes_what_the_provider_said_at_once(
    sqlite_gateway, browsers
):
    """Someone who will not (or may not: under 16) make an account leaves nothing behind:
    "Cancel" deletes the pending sign-up with the provider's email and id, instead of keeping
    it until it expires (30 minutes, then the next clean-up)."""
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    refused = await browser.submit("/auth/consent", "/auth/consent", {"accept_terms": "yes"})
    assert refused.status_code == 400 and "16 or older" in refused.text
    assert 'action="/auth/consent/cancel"' in refused.text
    assert await _count(sqlite_gateway, OAuthRequest) == 1
    left = await browser.submit("/auth/consent", "/auth/consent/cancel", {})
    assert left.status_code == 303 and left.headers["location"] == "/login"
    assert await _count(sqlite_gateway, OAuthRequest) == 0
    await _nothing_made(sqlite_gateway)
    assert (await browser.get("/auth/consent")).status_code == 400


async def test_the_consent_page_is_this_browsers_only_and_used_once(sqlite_gateway, browsers):
    browser, other = browsers(sqlite_gateway), browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    assert (await other.get("/auth/consent")).status_code == 400
    await other.get("/login")
    token = await other.token("/login")
    refused = await other.client.post(
        "/auth/consent", data={"csrf_token": token, "age_16_plus": "yes", "accept_terms": "yes"}
    )
    assert refused.status_code == 400 and "expired" in refused.text
    assert await _count(sqlite_gateway, User) == 0
    await accept_consent(browser)
    await browser.submit("/settings", "/logout", {})
    assert (await browser.get("/auth/consent")).status_code == 400


async def test_a_linked_identity_signs_its_user_in(gateway, browsers):
    browser = browsers(gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await accept_consent(browser)
    user = await _user(gateway, ADA)
    again = browsers(gateway)
    back = await sign_in_with(again, "github", ADA_GITHUB)
    assert back.status_code == 303 and back.headers["location"] == "/settings"
    page = await again.get("/settings")
    assert page.status_code == 200 and ADA in page.text
    assert await _count(gateway, User) == 1
    assert await _count(gateway, WebSession, WebSession.user_id == user.id) == 2


async def test_sign_in_goes_back_to_the_page_asked_for(sqlite_gateway, browsers):
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await accept_consent(browser)
    again = browsers(sqlite_gateway)
    callback = at_provider(
        await start(again, "github", "/login?next=/legal/terms", next="/legal/terms"), ADA_GITHUB
    )
    assert (await again.get(local(callback))).headers["location"] == "/legal/terms"
    for next_url in ("//evil.test/x", "https://evil.test/", "/" + "x" * 600):
        elsewhere = browsers(sqlite_gateway)
        callback = at_provider(await start(elsewhere, "github", next=next_url), ADA_GITHUB)
        assert (await elsewhere.get(local(callback))).headers["location"] == "/settings"


async def test_an_address_taken_meanwhile_is_said_on_the_consent_page(sqlite_gateway, browsers):
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await browsers(sqlite_gateway).sign_up(ADA)  # in another browser, a moment later
    refused = await accept_consent(browser)
    assert refused.status_code == 409 and "already exists" in refused.text
    assert 'href="#f-email"' not in refused.text  # no such field on this page
    assert await _identities(sqlite_gateway, (await _user(sqlite_gateway, ADA)).id) == []


# -- an existing user ---------------------------------------------------------------------------


async def test_a_verified_provider_email_links_a_verified_account(gateway, browsers):
    user = await _password_user(gateway, browsers, ADA, verified=True)
    browser = browsers(gateway)
    back = await sign_in_with(browser, "google", ADA_GOOGLE)
    assert back.status_code == 303 and back.headers["location"] == "/settings"
    assert await _identities(gateway, user.id) == [("google", ADA_GOOGLE, ADA)]
    assert await _count(gateway, User) == 1


async def test_an_unverified_provider_email_does_not_link(gateway, browsers, providers):
    user = await _password_user(gateway, browsers, "mallory@example.com", verified=True)
    for provider, person in (("github", MALLORY_GITHUB), ("google", MALLORY_GOOGLE)):
        browser = browsers(gateway)
        refused = await sign_in_with(browser, provider, person)
        assert refused.status_code == 409
        assert "Sign in with your password first" in refused.text
        assert "link" in refused.text and "Settings" in refused.text
        assert browser.cookie("reapi_session") is None
    assert await _identities(gateway, user.id) == []
    assert await _count(gateway, WebSession) == 0


async def test_an_account_that_never_proved_its_address_is_not_handed_over(gateway, browsers):
    """Someone signed up with Ada's address and a password of theirs, never verified: Ada
    arriving with a verified Google identity must not be signed in to that account."""
    squatter = await _password_user(gateway, browsers, ADA, verified=False)
    browser = browsers(gateway)
    refused = await sign_in_with(browser, "google", ADA_GOOGLE)
    assert refused.status_code == 409 and "Verify your email address first" in refused.text
    assert await _identities(gateway, squatter.id) == []
    assert browser.cookie("reapi_session") is None


async def test_an_operator_created_user_is_linked_and_verified(gateway, browsers):
    async with gateway.rt.db.write() as session:
        await create_account(session, ADA, credits_granted=5, now=gateway.rt.now())
    browser = browsers(gateway)
    back = await sign_in_with(browser, "github", ADA_GITHUB)
    assert back.headers["location"] == "/settings"
    user = await _user(gateway, ADA)
    assert user.email_verified_at == gateway.rt.now()
    assert await _identities(gateway, user.id) == [("github", ADA_GITHUB, ADA)]


async def test_githubs_primary_verified_address_is_the_one_used(sqlite_gateway, browsers):
    """Grace keeps her GitHub address private and has an unverified old one: `/user/emails`
    gives the primary, verified one."""
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", GRACE_GITHUB)
    assert "grace@example.com" in (await browser.get("/auth/consent")).text


async def test_no_address_from_the_provider_is_refused(sqlite_gateway, browsers, providers):
    providers.github.add_identity(FakeIdentity(id="2001", login="anon", name="A", email=None))
    refused = await sign_in_with(browsers(sqlite_gateway), "github", "2001")
    assert refused.status_code == 400 and "did not give us an email address" in refused.text
    await _nothing_made(sqlite_gateway)


async def test_a_disabled_user_is_not_signed_in(sqlite_gateway, browsers):
    browser = browsers(sqlite_gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await accept_consent(browser)
    user = await _user(sqlite_gateway, ADA)
    async with sqlite_gateway.rt.db.write() as session:
        (await session.get(User, user.id)).disabled_at = sqlite_gateway.rt.now()
    other = browsers(sqlite_gateway)
    refused = await sign_in_with(other, "github", ADA_GITHUB)
    assert refused.status_code == 400 and "disabled" in refused.text
    assert other.cookie("reapi_session") is None


# -- the state -------------------------------------------------------------------------------------


async def test_a_missing_or_unknown_state_is_refused_and_nothing_is_made(gateway, browsers):
    browser = browsers(gateway)
    callback = at_provider(await start(browser, "github"), ADA_GITHUB)
    code = query_of(callback)["code"]
    for query in (f"?code={code}", f"?code={code}&state={secrets.token_urlsafe(32)}", ""):
        refused = await browser.get("/auth/github/callback" + query)
        assert refused.status_code == 400 and "This sign-in has expired" in refused.text
    await _nothing_made(gateway)


async def test_the_state_is_stored_hashed_and_used_once(gateway, browsers, providers):
    browser = browsers(gateway)
    authorization = await start(browser, "github")
    state = query_of(authorization)["state"]
    async with gateway.rt.db.read() as session:
        rows = list((await session.execute(select(OAuthRequest))).scalars())
    assert [row.key_hash for row in rows] == [hashlib.sha256(state.encode()).hexdigest()]
    assert rows[0].code_verifier and state not in repr([vars(row) for row in rows])
    callback = local(at_provider(authorization, ADA_GITHUB))
    assert (await browser.get(callback)).headers["location"] == "/auth/consent"
    replayed = await browser.get(callback)
    assert replayed.status_code == 400 and "expired" in replayed.text
    assert providers.github.token_exchanges == 1  # refused before asking GitHub again


async def test_a_state_from_another_browser_is_refused_and_stays_its_owners(
    gateway, browsers, providers
):
    """Login CSRF: an attacker's own sign-in, finished in the victim's browser, signs the
    victim in to nothing; the attacker's state is not used up either."""
    attacker, victim = browsers(gateway), browsers(gateway)
    callback = local(at_provider(await start(attacker, "github"), ADA_GITHUB))
    await victim.get("/login")
    refused = await victim.get(callback)
    assert refused.status_code == 400 and victim.cookie("reapi_session") is None
    assert providers.github.token_exchanges == 0
    assert (await attacker.get(callback)).headers["location"] == "/auth/consent"


async def test_a_state_older_than_ten_minutes_is_refused(gateway, browsers, clock):
    browser = browsers(gateway)
    callback = local(at_provider(await start(browser, "github"), ADA_GITHUB))
    clock.advance(601)
    refused = await browser.get(callback)
    assert refused.status_code == 400 and "expired" in refused.text
    await _nothing_made(gateway)


async def test_a_sign_in_started_before_signing_in_otherwise_is_refused_after(
    sqlite_gateway, browsers
):
    """A password sign-in gives the browser a new id: no state from before survives it."""
    user = await _password_user(sqlite_gateway, browsers, new_email(), verified=True)
    browser = browsers(sqlite_gateway)
    stale = local(at_provider(await start(browser, "github"), ADA_GITHUB))
    assert (await browser.sign_in(user.email)).status_code == 303
    refused = await browser.get(stale)
    assert refused.status_code == 400 and await _identities(sqlite_gateway, user.id) == []


# -- the provider's answers ------------------------------------------------------------------------


async def test_a_reused_code_is_refused_by_the_provider_and_nothing_is_made(
    gateway, browsers, providers
):
    browser = browsers(gateway)
    first = query_of(at_provider(await start(browser, "github"), ADA_GITHUB))
    await browser.get(f"/auth/github/callback?code={first['code']}&state={first['state']}")
    second_state = query_of(await start(browser, "github"))["state"]
    refused = await browser.get(f"/auth/github/callback?code={first['code']}&state={second_state}")
    assert refused.status_code == 400 and "did not confirm" in refused.text
    assert providers.github.token_errors == {"bad_verification_code": 1}
    await _nothing_made(gateway)


async def test_cancelling_at_the_provider_is_a_page_and_nothing_is_made(gateway, browsers):
    browser = browsers(gateway)
    for provider in ("github", "google"):
        back = cancel_at_provider(await start(browser, provider))
        assert query_of(back)["error"] == "access_denied"
        refused = await browser.get(local(back))
        assert refused.status_code == 400 and "Sign-in cancelled" in refused.text
    await _nothing_made(gateway)
    assert await _count(gateway, OAuthRequest) == 0


async def test_a_provider_that_does_not_answer_is_a_502_page(sqlite_gateway, browsers, providers):
    browser = browsers(sqlite_gateway)
    callback = local(at_provider(await start(browser, "github"), ADA_GITHUB))
    providers.github_server.faults.set(Fault.ERROR_503, count=5)
    refused = await browser.get(callback)
    assert refused.status_code == 502 and "did not answer" in refused.text
    await _nothing_made(sqlite_gateway)


class _Forger(GoogleSimulator):
    """A Google whose id_tokens are wrong in one way (still signed with its key)."""

    def __init__(self, clock, **forged) -> None:
        super().__init__(clock=clock)
        self.forged = forged

    def id_token(self, identity, **claims):
        return super().id_token(identity, **{**claims, **self.forged})


@pytest.mark.parametrize(
    "forged",
    [
        {"audience": "another-client.apps.googleusercontent.com"},
        {"nonce": "not-the-nonce"},
        {"issuer": "https://accounts.evil.test"},
        {"issued_at": 1_800_000_000.0 - 7200},  # expired an hour ago
        {"access_token": "ya29.another"},  # at_hash of another token
    ],
    ids=["aud", "nonce", "iss", "exp", "at_hash"],
)
async def test_an_id_token_that_does_not_check_out_is_refused(
    make_gateway, browsers, clock, forged
):
    with running_providers(clock, google=_Forger(clock, **forged)) as running:
        gateway = await make_gateway(public_base_url=BASE, oauth=running.settings())
        gateway.rt.clock = clock
        browser = browsers(gateway)
        refused = await sign_in_with(browser, "google", ADA_GOOGLE)
        assert refused.status_code == 400 and "did not confirm" in refused.text
        await _nothing_made(gateway)
        assert await _count(gateway, OAuthRequest) == 0


async def test_an_id_token_signed_by_another_key_is_refused(make_gateway, browsers, clock):
    from joserfc.jwk import RSAKey

    forger = GoogleSimulator(clock=clock)
    with running_providers(clock, google=forger) as running:
        gateway = await make_gateway(public_base_url=BASE, oauth=running.settings())
        gateway.rt.clock = clock
        browser = browsers(gateway)
        authorization = await start(browser, "google")  # the gateway has the real keys now
        forger.signing_key = RSAKey.generate_key(
            2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True
        )
        forger.jwks = lambda: {"keys": []}  # and the new key is published nowhere
        refused = await browser.get(local(at_provider(authorization, ADA_GOOGLE)))
        assert refused.status_code == 502  # a JWKS without keys: Google is not working
        forger.jwks = lambda: {"keys": [RSAKey.generate_key(2048, auto_kid=True).as_dict()]}
        authorization = await start(browser, "google")
        refused = await browser.get(local(at_provider(authorization, ADA_GOOGLE)))
        assert refused.status_code == 400  # published keys, none of them the signer
        await _nothing_made(gateway)


async def test_google_keys_rotated_since_they_were_fetched_are_fetched_again(
    make_gateway, browsers, clock
):
    from joserfc.jwk import RSAKey

    google = GoogleSimulator(clock=clock)
    with running_providers(clock, google=google) as running:
        gateway = await make_gateway(public_base_url=BASE, oauth=running.settings())
        gateway.rt.clock = clock
        browser = browsers(gateway)
        authorization = await start(browser, "google")
        google.signing_key = RSAKey.generate_key(
            2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True
        )
        back = await browser.get(local(at_provider(authorization, ADA_GOOGLE)))
        assert back.headers["location"] == "/auth/consent"


async def test_a_discovery_document_for_another_issuer_is_refused(make_gateway, browsers, clock):
    with running_providers(clock) as running:
        settings = running.settings(issuer="https://accounts.google.com")
        gateway = await make_gateway(public_base_url=BASE, oauth=settings)
        refused = await browsers(gateway).submit("/login", "/auth/google", {})
        assert refused.status_code == 502 and "did not answer" in refused.text
        assert await _count(gateway, OAuthRequest) == 0


# -- signing in again: the step-up of a user without a password --------------------------------

STALE = 11 * 60  # past the ten minutes a step-up counts a sign-in as recent


async def _oauth_only(gateway, browsers, person=ADA_GITHUB):
    """A new person from GitHub, signed in, their sign-in no longer recent."""
    browser = browsers(gateway)
    await sign_in_with(browser, "github", person)
    assert (await accept_consent(browser)).status_code == 303
    return browser


async def _sessions(gateway, email) -> int:
    user = await _user(gateway, email)
    return await _count(gateway, WebSession, WebSession.user_id == user.id)


async def test_a_user_without_a_password_steps_up_by_signing_in_again(gateway, browsers, clock):
    """The email change asks a password-less user for a recent sign-in; "Sign in again with
    GitHub" makes one (a new session, the old one ended) and comes back to the page."""
    browser = await _oauth_only(gateway, browsers)
    clock.advance(STALE)
    new = new_email()
    page = await browser.get("/settings/email")
    assert 'action="/auth/github/reauth"' in page.text and "Sign in again with GitHub" in page.text
    assert "Sign in again with Google" not in page.text  # only what is linked to them
    assert 'name="next" value="/settings/email"' in page.text
    refused = await browser.submit("/settings/email", "/settings/email", {"email": new})
    assert refused.status_code == 401
    before = browser.cookie("reapi_session")

    back = await browser.get(
        local(at_provider(await start_again(browser, "github", "/settings/email"), ADA_GITHUB))
    )
    assert back.status_code == 303 and back.headers["location"] == "/settings/email"
    assert browser.cookie("reapi_session") not in (None, before)
    assert await _sessions(gateway, ADA) == 1  # the stale session was replaced
    page = await browser.get("/settings/email")
    assert "You signed in moments ago" in page.text and "Sign in again with" not in page.text
    done = await browser.submit("/settings/email", "/settings/email", {"email": new})
    assert done.status_code == 303, done.text
    assert len(await mail_to(gateway.rt, new)) == 1
    assert await _count(gateway, OAuthRequest) == 0


async def test_signing_in_again_takes_only_the_identity_linked_to_you(
    sqlite_gateway, browsers, clock
):
    browser = await _oauth_only(sqlite_gateway, browsers)
    clock.advance(STALE)
    before = browser.cookie("reapi_session")
    authorization = await start_again(browser, "github", "/settings/email")
    refused = await browser.get(local(at_provider(authorization, GRACE_GITHUB)))
    assert refused.status_code == 403 and "not the one linked to your account" in refused.text
    assert browser.cookie("reapi_session") == before  # still the old, stale session
    assert "Sign in again with GitHub" in (await browser.get("/settings/email")).text
    assert await _user(sqlite_gateway, "grace@example.com") is None  # nobody made or linked
    assert await _sessions(sqlite_gateway, ADA) == 1


async def test_signing_in_again_is_for_the_signed_in_user_only(sqlite_gateway, browsers, clock):
    anonymous = browsers(sqlite_gateway)
    asked = await anonymous.submit("/login", "/auth/github/reauth", {"next": "/settings/email"})
    assert asked.status_code == 303 and asked.headers["location"].startswith("/login")
    browser = await _oauth_only(sqlite_gateway, browsers)
    callback = local(at_provider(await start_again(browser, "github", "/settings"), ADA_GITHUB))
    await browser.submit("/settings", "/logout", {})
    refused = await browser.get(callback)  # signed out meanwhile: not a sign-in
    assert refused.status_code == 400 and browser.cookie("reapi_session") is None


async def test_signing_in_again_with_two_factor_on_asks_for_the_code(
    sqlite_gateway, browsers, clock
):
    browser = await _oauth_only(sqlite_gateway, browsers)
    secret, _ = await turn_on(browser, clock.now)
    clock.advance(STALE)
    authorization = await start_again(browser, "github", "/settings/2fa/backup-codes")
    back = await browser.get(local(at_provider(authorization, ADA_GITHUB)))
    assert back.status_code == 303
    assert back.headers["location"].startswith("/login/2fa?")  # the code before the session
    page = local(back.headers["location"])
    done = await browser.submit(
        page,
        "/login/2fa",
        {"code": code_at(secret, clock.now), "next": "/settings/2fa/backup-codes"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/settings/2fa/backup-codes"
    page = await browser.get("/settings/2fa/backup-codes")
    assert "You signed in moments ago" in page.text
    clock.advance(30)  # the step-up's own code: the next one (a code works once)
    codes = await browser.submit(
        "/settings/2fa/backup-codes",
        "/settings/2fa/backup-codes",
        {"code": code_at(secret, clock.now)},
    )
    assert codes.status_code == 200 and "backup" in codes.text.lower()


async def test_a_user_without_a_password_mints_a_key_after_signing_in_again(
    sqlite_gateway, browsers, clock
):
    """Sudo mode for an OAuth-only account: the confirm-access page offers "Sign in again with
    GitHub" (no password to type), which comes back to the keys page with a recent sign-in."""
    gateway = sqlite_gateway
    browser = await _oauth_only(gateway, browsers)
    clock.advance(STALE)
    asked = await browser.submit("/dashboard/keys", "/dashboard/keys/management", {"name": "ops"})
    assert asked.status_code == 403 and "make a management key" in asked.text
    assert 'name="current_password"' not in asked.text
    assert 'action="/auth/github/reauth"' in asked.text
    assert 'name="next" value="/dashboard/keys"' in asked.text
    forced = await browser.submit(
        "/dashboard/keys", "/dashboard/keys/management", {"name": "ops", "confirm_access": "1"}
    )
    assert forced.status_code == 401 and "sign in again" in forced.text
    user = await _user(gateway, ADA)
    async with gateway.rt.db.read() as session:
        account = await account_of(session, user.id)
    assert await keys_service(gateway.rt).list(account.id) == []

    authorization = await start_again(browser, "github", "/dashboard/keys")
    back = await browser.get(local(at_provider(authorization, ADA_GITHUB)))
    assert back.status_code == 303 and back.headers["location"] == "/dashboard/keys"
    done = await browser.submit("/dashboard/keys", "/dashboard/keys/management", {"name": "ops"})
    assert done.status_code == 201 and "rk_mgmt_" in done.text


async def test_linking_another_identity_asks_a_stale_session_to_confirm(
    sqlite_gateway, browsers, clock
):
    """Whoever a linked identity belongs to signs in to the account from then on: a stolen
    session must not be able to add the thief's."""
    browser, _ = await _signed_in(sqlite_gateway, browsers)
    clock.advance(STALE)
    asked = await browser.submit("/settings", "/settings/identities/github/link", {})
    assert asked.status_code == 403 and "link a GitHub account" in asked.text
    assert 'action="/settings/identities/github/link"' in asked.text
    confirmed = await browser.submit(
        "/settings",
        "/settings/identities/github/link",
        {"confirm_access": "1", "current_password": PASSWORD},
    )
    assert confirmed.status_code == 303 and not confirmed.headers["location"].startswith("/")


# -- linking and unlinking in Settings -------------------------------------------------------


async def _signed_in(gateway, browsers, email=None):
    browser = browsers(gateway)
    email = email or new_email()
    await browser.sign_up(email)
    return browser, await _user(gateway, email)


async def test_a_signed_in_user_links_github_and_google(gateway, browsers):
    browser, user = await _signed_in(gateway, browsers)
    page = await browser.get("/settings")
    assert ">Link GitHub<" in page.text and ">Link Google<" in page.text
    for provider, person in (("github", ADA_GITHUB), ("google", ADA_GOOGLE)):
        back = await browser.get(local(at_provider(await start_link(browser, provider), person)))
        assert back.headers["location"] == "/settings?done=identity_linked#sign-in-methods"
    assert sorted(await _identities(gateway, user.id)) == [
        ("github", ADA_GITHUB, ADA),
        ("google", ADA_GOOGLE, ADA),
    ]
    page = await browser.get("/settings?done=identity_linked")
    assert ">Link GitHub<" not in page.text and page.text.count(">Unlink<") == 2


async def test_linking_starts_from_settings_only_for_the_signed_in_user(gateway, browsers):
    browser, user = await _signed_in(gateway, browsers)
    callback = local(at_provider(await start_link(browser, "github"), ADA_GITHUB))
    await browser.submit("/settings", "/logout", {})
    refused = await browser.get(callback)
    assert refused.status_code == 400 and await _identities(gateway, user.id) == []
    anonymous = await browsers(gateway).submit("/login", "/settings/identities/github/link", {})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


async def test_an_identity_linked_to_someone_else_is_not_linked_again(gateway, browsers):
    first = browsers(gateway)
    await sign_in_with(first, "github", ADA_GITHUB)
    await accept_consent(first)
    browser, user = await _signed_in(gateway, browsers)
    refused = await browser.get(local(at_provider(await start_link(browser, "github"), ADA_GITHUB)))
    assert refused.status_code == 409 and "linked to another account" in refused.text
    assert await _identities(gateway, user.id) == []


async def test_one_identity_per_provider(sqlite_gateway, browsers):
    browser, user = await _signed_in(sqlite_gateway, browsers)
    for person in (ADA_GITHUB, GRACE_GITHUB):
        last = await browser.get(local(at_provider(await start_link(browser, "github"), person)))
    assert last.status_code == 409 and "linked already" in last.text
    assert await _identities(sqlite_gateway, user.id) == [("github", ADA_GITHUB, ADA)]


async def test_unlinking_keeps_a_way_to_sign_in(gateway, browsers):
    browser = browsers(gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await accept_consent(browser)
    user = await _user(gateway, ADA)
    [only] = await identities_rows(gateway, user.id)
    refused = await browser.submit("/settings", f"/settings/identities/{only.id}/unlink", {})
    assert refused.status_code == 409 and "only way to sign in" in refused.text
    assert len(await _identities(gateway, user.id)) == 1

    await browser.get(local(at_provider(await start_link(browser, "google"), ADA_GOOGLE)))
    unlinked = await browser.submit("/settings", f"/settings/identities/{only.id}/unlink", {})
    assert unlinked.headers["location"] == "/settings?done=identity_unlinked#sign-in-methods"
    [google] = await identities_rows(gateway, user.id)
    refused = await browser.submit("/settings", f"/settings/identities/{google.id}/unlink", {})
    assert refused.status_code == 409


async def test_with_a_password_the_last_identity_unlinks(gateway, browsers):
    browser, user = await _signed_in(gateway, browsers)
    await browser.get(local(at_provider(await start_link(browser, "github"), ADA_GITHUB)))
    [row] = await identities_rows(gateway, user.id)
    unlinked = await browser.submit("/settings", f"/settings/identities/{row.id}/unlink", {})
    assert unlinked.status_code == 303 and await _identities(gateway, user.id) == []
    # it no longer signs this user in: GitHub's Ada is a stranger again (the consent page)
    back = await sign_in_with(browsers(gateway), "github", ADA_GITHUB)
    assert back.headers["location"] == "/auth/consent"


async def test_no_one_unlinks_another_users_identity(sqlite_gateway, browsers):
    owner = browsers(sqlite_gateway)
    await sign_in_with(owner, "github", ADA_GITHUB)
    await accept_consent(owner)
    [row] = await identities_rows(sqlite_gateway, (await _user(sqlite_gateway, ADA)).id)
    other, _ = await _signed_in(sqlite_gateway, browsers)
    answer = await other.submit("/settings", f"/settings/identities/{row.id}/unlink", {})
    assert answer.status_code == 303 and "done" not in answer.headers["location"]
    assert await _count(sqlite_gateway, OAuthIdentity) == 1


async def test_deleting_a_user_deletes_their_identities(gateway, browsers):
    from reapi_server.accounts.deletion import delete_user

    browser = browsers(gateway)
    await sign_in_with(browser, "github", ADA_GITHUB)
    await accept_consent(browser)
    user = await _user(gateway, ADA)
    services = deletion_services(gateway)
    async with gateway.rt.db.write() as session:
        assert await delete_user(session, user.id, now=gateway.rt.now(), **services) is not None
    assert await _count(gateway, OAuthIdentity) == 0
    assert await _count(gateway, Consent) == 0


async def test_housekeeping_deletes_sign_ins_that_never_came_back(gateway, browsers, clock):
    await start(browsers(gateway), "github")  # never comes back
    await sign_in_with(browsers(gateway), "github", ADA_GITHUB)  # a sign-up awaiting consent
    assert await _count(gateway, OAuthRequest) == 2
    policy = SessionPolicy(idle_seconds=DAY, absolute_seconds=DAY)
    await purge_once(gateway.rt.db, policy, clock())
    assert await _count(gateway, OAuthRequest) == 2
    clock.advance(601)  # the sign-in's ten minutes are over, not the consent page's
    await purge_once(gateway.rt.db, policy, clock())
    assert await _count(gateway, OAuthRequest) == 1
    clock.advance(1800)
    await purge_once(gateway.rt.db, policy, clock())
    assert await _count(gateway, OAuthRequest) == 0


async def identities_rows(gateway, user_id) -> list[OAuthIdentity]:
    async with gateway.rt.db.read() as session:
        return await identities.list_identities(session, user_id)


# -- configuration --------------------------------------------------------------------------------


async def test_buttons_and_pages_only_for_configured_providers(make_gateway, browsers, clock):
    plain = await make_gateway(public_base_url=BASE)
    browser = browsers(plain)
    for page in ("/login", "/signup"):
        assert "/auth/github" not in (await browser.get(page)).text
    for path in ("/auth/github", "/auth/google/callback?code=x&state=y", "/auth/nope"):
        assert (await browser.get(path)).status_code == 404
    assert (await browser.submit("/login", "/auth/github", {})).status_code == 404
    assert "form-action 'self';" in (await browser.get("/login")).headers["content-security-policy"]
    with running_providers(clock) as running:
        only_github = running.settings()
        del only_github["google"]
        configured = await make_gateway(public_base_url=BASE, oauth=only_github)
        page = await browsers(configured).get("/login")
        assert "Continue with GitHub" in page.text and "Google" not in page.text
        # the button's answer redirects to GitHub: the form-action CSP allows exactly that
        github = running.github_server.base_url
        assert f"form-action 'self' {github};" in page.headers["content-security-policy"]
        assert (await browsers(configured).get("/auth/github")).headers["location"] == "/login"


async def test_signing_in_while_signed_in_goes_to_settings(sqlite_gateway, browsers):
    browser, _ = await _signed_in(sqlite_gateway, browsers)
    response = await browser.submit("/settings", "/auth/github", {})
    assert response.headers["location"] == "/settings"


def test_oauth_settings_from_the_environment(monkeypatch, tmp_path):
    from reapi_server.config import Settings

    monkeypatch.setenv("REAPI_OAUTH__GITHUB__CLIENT_ID", "Iv1.abc")
    monkeypatch.setenv("REAPI_OAUTH__GITHUB__CLIENT_SECRET", "shh")
    settings = Settings(data_dir=tmp_path)
    assert settings.oauth.github.configured and not settings.oauth.google.configured
    assert settings.oauth.github.token_url == "https://github.com/login/oauth/access_token"
    assert settings.oauth.google.discovery_url.startswith("https://accounts.google.com/")
    assert "shh" not in repr(settings)


@pytest.mark.parametrize("failure", ["oauth", "transport"])
async def test_a_provider_refusal_carries_nothing_of_the_failed_call(failure):
    """The failed call's error holds the request (client secret, code): the refusal raised in
    its place must not keep it as its context."""
    import httpx2
    from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

    from reapi_server.oauth.errors import OAuthError
    from reapi_server.oauth.providers import provider_call

    async def call():
        if failure == "oauth":
            raise AuthlibOAuthError(error="bad_verification_code", description="the-code")
        raise httpx2.ConnectError("client_secret=the-secret")

    with pytest.raises(OAuthError) as refused:
        await provider_call("GitHub", call)
    assert refused.value.__context__ is None and refused.value.__cause__ is None
