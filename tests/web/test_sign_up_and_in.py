"""Sign-up (age and consent), email verification, sign-in and out, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select
from tests.web.helpers import PASSWORD, mail_to, new_email, web_context

from reapi_server.accounts.service import account_of
from reapi_server.identity import repository as users
from reapi_server.identity.errors import EmailNotVerified, EmailTaken
from reapi_server.identity.passwords import ARGON2ID, Argon2Params, Passwords
from reapi_server.identity.service import Identity, SignUpForm, require_verified
from reapi_server.identity.sessions import Client
from reapi_server.models import Consent, Membership, User


async def _user(gateway, email):
    async with gateway.rt.db.read() as session:
        return await users.find_user_by_email(session, email)


async def test_sign_up_makes_a_user_an_account_consents_and_a_verification_mail(db_web, browsers):
    browser = browsers(db_web)
    email = new_email()
    response = await browser.sign_up(email.upper())  # normalised
    assert response.headers["location"] == "/settings?done=welcome"
    user = await _user(db_web, email)
    assert user is not None and user.email_verified_at is None
    assert user.password_hash.startswith("$argon2id$")
    async with db_web.rt.db.read() as session:
        account = await account_of(session, user.id)
        consents = await users.list_consents(session, user.id)
    assert account is not None and account.balance == 0
    version = web_context(db_web).identity.config.policy_versions
    assert {(c.kind, c.policy_version) for c in consents} == {
        ("age_16_plus", "1"),
        ("terms", version["terms"]),
        ("privacy", version["privacy"]),
    }
    assert {c.accepted_at for c in consents} == {db_web.rt.now()}
    settings = await browser.get("/settings")
    assert (
        settings.status_code == 200 and email in settings.text and "Not verified" in settings.text
    )
    [mail] = await mail_to(db_web.rt, email)
    assert mail.subject.startswith("Confirm your email address")
    assert mail.link("/verify").startswith("/verify?token=")
    assert PASSWORD not in mail.path.read_text()


@pytest.mark.parametrize(
    ("age", "terms", "field"),
    [("", "yes", "age_16_plus"), ("yes", "", "accept_terms"), ("", "", "age_16_plus")],
)
async def test_under_16_or_without_consent_is_refused_and_nothing_is_kept(
    web, browsers, age, terms, field
):
    browser = browsers(web)
    email = new_email()
    response = await browser.submit(
        "/signup",
        "/signup",
        {"email": email, "password": PASSWORD, "age_16_plus": age, "accept_terms": terms},
    )
    assert response.status_code == 400
    assert f'id="f-{field}-error"' in response.text
    if not age:
        assert "You must be 16 or older" in response.text
    assert (
        email in response.text and PASSWORD not in response.text
    )  # typed email kept, never the password
    async with web.rt.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar() == 0
        assert (await session.execute(select(func.count()).select_from(Consent))).scalar() == 0
    assert browser.cookie("reapi_session") is None


async def test_sign_up_shows_every_problem_beside_its_field(web, browsers):
    response = await browsers(web).submit(
        "/signup", "/signup", {"email": "nope", "password": "short"}
    )
    assert response.status_code == 400
    for field in ("email", "password", "age_16_plus", "accept_terms"):
        assert f'id="f-{field}-error"' in response.text
        assert f'href="#f-{field}"' in response.text  # the summary links to the field
    assert 'aria-invalid="true"' in response.text


async def test_an_email_already_taken_is_refused(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    response = await browsers(web).submit(
        "/signup",
        "/signup",
        {"email": email, "password": PASSWORD, "age_16_plus": "yes", "accept_terms": "yes"},
    )
    assert response.status_code == 409 and "already exists" in response.text


async def test_asking_whether_addresses_have_accounts_counts_towards_the_sign_up_limit(
    web, browsers, clock
):
    """ "Already exists" tells whether an address has an account: a sign-up answered so counts
    towards the 10 an hour per client address as one that succeeds does, or one client could
    test every address it likes. Once blocked, a taken and a free address get the same 429."""
    taken = new_email()
    await browsers(web).sign_up(taken)  # 1 of the 10
    form = {"password": PASSWORD, "age_16_plus": "yes", "accept_terms": "yes"}

    async def sign_up_as(email):
        return await browsers(web).submit("/signup", "/signup", {"email": email, **form})

    answers = [(await sign_up_as(taken)).status_code for _ in range(10)]
    assert answers == [409] * 9 + [429]
    blocked = await sign_up_as(new_email())
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    clock.advance(60 * 60 + 1)
    assert (await sign_up_as(taken)).status_code == 409


async def test_a_sign_up_racing_another_for_the_same_email_is_refused_with_no_chain(db_web):
    """The other sign-up lands while this one hashes its password: the unique email refuses
    the insert, and the refusal carries nothing of the database's error."""
    identity = web_context(db_web).identity
    email = new_email()

    class Racing(Passwords):
        async def hash(self, password: str) -> str:
            async with db_web.rt.db.write() as session:
                await users.insert_user(session, email=email, password_hash=None, now=1.0)
            return await super().hash(password)

    racing = Identity(
        db_web.rt.db,
        config=identity.config,
        mail=identity.mail,
        throttle=identity.throttle,
        clock=identity.clock,
        keys=identity.keys,
        passwords=Racing(),
    )
    form = SignUpForm(email=email, password=PASSWORD, age_16_plus=True, accept_terms=True)
    with pytest.raises(EmailTaken) as refused:
        await racing.sign_up(form, Client("192.0.2.1"))
    assert refused.value.__context__ is None and refused.value.__cause__ is None


async def test_verification_get_shows_a_button_and_only_the_post_uses_the_link(db_web, browsers):
    browser = browsers(db_web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(db_web.rt, email)
    link = mail.link("/verify")
    other = browsers(db_web)  # a mail scanner, or another browser, opening the link
    for _ in range(3):
        page = await other.get(link)
        assert page.status_code == 200 and "Confirm email address" in page.text
    assert (await _user(db_web, email)).email_verified_at is None
    confirmed = await browser.submit(link, "/verify", {"token": mail.token("/verify")})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/settings?done=verified"
    landed = (await browser.get(confirmed.headers["location"])).text
    assert "Your email address is verified. Next: create an API key on the Keys page." in landed
    assert (await _user(db_web, email)).email_verified_at == db_web.rt.now()
    again = await browser.submit("/settings", "/verify", {"token": mail.token("/verify")})
    assert again.status_code == 400 and "Your email address is verified" in again.text
    assert (await browser.get(link)).status_code == 400
    assert (await other.get(link)).status_code == 400
    assert "no longer works" in (await other.get(link)).text  # signed out: nothing to tell


async def test_the_used_link_opened_again_by_its_verified_person_says_it_is_verified(
    db_web, browsers
):
    """A second click on the mail's link (or a mail opened twice) is the common case: the
    person is told their address is verified, not that something failed."""
    browser = browsers(db_web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(db_web.rt, email)
    await browser.submit(mail.link("/verify"), "/verify", {"token": mail.token("/verify")})
    page = await browser.get(mail.link("/verify"))
    assert page.status_code == 400
    assert "Your email address is verified" in page.text and email in page.text
    assert "no longer works" not in page.text and 'href="/dashboard"' in page.text


async def test_an_unverified_person_with_a_dead_link_is_sent_to_settings_for_a_new_one(
    web, browsers, clock
):
    browser = browsers(web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(web.rt, email)
    clock.advance(24 * 3600 + 1)
    page = await browser.get(mail.link("/verify"))
    assert page.status_code == 400 and "no longer works" in page.text
    assert "Ask for a new one from your settings" in page.text


async def test_verification_links_expire_after_24_hours(web, browsers, clock):
    browser = browsers(web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(web.rt, email)
    clock.advance(24 * 3600 + 1)
    response = await browser.submit("/settings", "/verify", {"token": mail.token("/verify")})
    assert response.status_code == 400
    assert (await _user(web, email)).email_verified_at is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: "",
        lambda t: "../" + t[3:],
    ],
)
async def test_a_tampered_verification_token_is_refused(web, browsers, tamper):
    browser = browsers(web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(web.rt, email)
    bad = tamper(mail.token("/verify"))
    assert (await browser.get("/verify", params={"token": bad})).status_code == 400
    response = await browser.submit("/settings", "/verify", {"token": bad})
    assert response.status_code == 400
    assert (await _user(web, email)).email_verified_at is None


async def test_a_verification_token_does_not_reset_a_password(web, browsers):
    browser = browsers(web)
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(web.rt, email)
    token = mail.token("/verify")
    assert (await browser.get("/reset/confirm", params={"token": token})).status_code == 400
    response = await browser.submit(
        "/reset", "/reset/confirm", {"token": token, "password": "another fine passphrase"}
    )
    assert response.status_code == 400
    assert (await browsers(web).sign_in(email)).status_code == 303  # the old password works


async def test_a_new_verification_mail_replaces_the_old_link(web, browsers, clock):
    browser = browsers(web)
    email = new_email()
    await browser.sign_up(email)
    [first] = await mail_to(web.rt, email)
    response = await browser.submit("/settings", "/settings/verification", {})
    assert response.headers["location"] == "/settings?done=verification_sent"
    second = [m for m in await mail_to(web.rt, email) if m.path != first.path]
    assert len(second) == 1
    old = await browser.submit("/settings", "/verify", {"token": first.token("/verify")})
    assert old.status_code == 400
    new = await browser.submit("/settings", "/verify", {"token": second[0].token("/verify")})
    assert new.status_code == 303


async def test_sign_in_and_out(db_web, browsers):
    email = new_email()
    await browsers(db_web).sign_up(email)
    browser = browsers(db_web)
    assert (await browser.get("/settings")).headers["location"] == "/login?next=/settings"
    wrong = await browser.sign_in(email, "not the password at all")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert "not the password at all" not in wrong.text
    stranger = new_email()
    unknown = await browser.sign_in(stranger, PASSWORD)
    assert unknown.status_code == 401  # the same answer for an unknown email
    assert unknown.text.replace(stranger, "E") == wrong.text.replace(email, "E")
    signed_in = await browser.sign_in(email)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/settings"
    assert (await browser.get("/settings")).status_code == 200
    assert (await browser.get("/login")).headers["location"] == "/settings"
    out = await browser.submit("/settings", "/logout", {})
    assert out.headers["location"] == "/login?done=signed_out"
    assert (await browser.get("/settings")).status_code == 303
    async with db_web.rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
        assert len(await users.list_sessions(session, user.id)) == 1  # the sign-up's browser


async def test_sign_in_goes_back_to_a_local_page_only(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    for given, expected in [
        ("/settings#sessions", "/settings#sessions"),
        ("https://evil.example/", "/settings"),
        ("//evil.example/", "/settings"),
        ("/\\evil.example", "/settings"),
    ]:
        browser = browsers(web)
        response = await browser.submit(
            "/login", "/login", {"email": email, "password": PASSWORD, "next": given}
        )
        assert response.headers["location"] == expected


async def test_an_unverified_user_signs_in_but_is_not_verified_for_money(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    user = await _user(web, email)
    with pytest.raises(EmailNotVerified) as refused:
        require_verified(user)
    assert refused.value.http_status == 403
    browser = browsers(web)
    await browser.sign_up(other := new_email())
    [mail] = await mail_to(web.rt, other)
    await browser.submit("/settings", "/verify", {"token": mail.token("/verify")})
    require_verified(await _user(web, other))  # passes


async def test_a_hash_made_with_weaker_parameters_is_replaced_at_sign_in(db_web, browsers):
    email = new_email()
    await browsers(db_web).sign_up(email)
    old_hash = (await _user(db_web, email)).password_hash
    identity = web_context(db_web).identity
    identity.passwords = Passwords(Argon2Params(ARGON2ID.time_cost + 1, ARGON2ID.memory_cost, 1))
    assert (await browsers(db_web).sign_in(email)).status_code == 303
    new_hash = (await _user(db_web, email)).password_hash
    assert new_hash != old_hash and f"t={ARGON2ID.time_cost + 1}" in new_hash
    assert (await browsers(db_web).sign_in(email)).status_code == 303  # the new hash works
    assert (await _user(db_web, email)).password_hash == new_hash  # and is not redone


async def test_an_operator_created_user_has_no_password_until_a_reset(web, browsers):
    from reapi_server.accounts.service import create_account

    async with web.rt.db.write() as session:
        await create_account(session, "ops@example.com", credits_granted=5, now=web.rt.now())
    response = await browsers(web).sign_in("ops@example.com", PASSWORD)
    assert response.status_code == 401
    async with web.rt.db.read() as session:
        members = (await session.execute(select(Membership))).scalars().all()
    assert [m.role for m in members] == ["owner"]
