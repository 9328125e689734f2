"""Server-side sessions (hashed ids, rotation, idle and absolute expiry, list and end), the
cookies exactly as promised, and session fixation."""

import hashlib

import pytest
from sqlalchemy import select
from tests.web.helpers import PASSWORD, Browser, new_email, web_context

from reapi_server.models import WebSession

DAY = 86_400.0


def _set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = header
    return found


async def test_cookies_on_a_plain_http_address(web, browsers):
    browser = browsers(web)
    page = await browser.get("/login")
    csrf = _set_cookies(page)["reapi_csrf"]
    assert "HttpOnly" in csrf and "SameSite=lax" in csrf and "Path=/" in csrf
    assert "Secure" not in csrf and "Max-Age" not in csrf  # a browser-session cookie
    await browsers(web).sign_up(email := new_email())
    signed_in = await browser.sign_in(email)
    cookies = _set_cookies(signed_in)
    session = cookies["reapi_session"]
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
    assert "Secure" not in session and "Domain" not in session
    assert f"Max-Age={30 * 86400}" in session
    assert not any(name.startswith("__Host-") for name in cookies)


async def test_cookies_on_an_https_address_are_host_prefixed_and_secure(make_gateway, browsers):
    gateway = await make_gateway(public_base_url="https://reapi.example")
    browser = browsers(gateway, "https://reapi.example")
    page = await browser.get("/signup")
    csrf = _set_cookies(page)["__Host-reapi_csrf"]
    assert "Secure" in csrf and "Path=/" in csrf and "Domain" not in csrf
    response = await browser.sign_up(new_email())
    session = _set_cookies(response)["__Host-reapi_session"]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session
    assert "Path=/" in session and "Domain" not in session
    assert (await browser.get("/settings")).status_code == 200
    assert "strict-transport-security" in page.headers
    # The bare names mean nothing there.
    plain = browsers(gateway, "https://reapi.example")
    plain.client.cookies.set("reapi_session", browser.cookie("__Host-reapi_session"))
    assert (await plain.get("/settings")).status_code == 303


async def test_the_database_keeps_only_a_hash_of_the_session_id(db_web, browsers):
    browser = browsers(db_web)
    await browser.sign_up(new_email())
    cookie = browser.cookie("reapi_session")
    async with db_web.rt.db.read() as session:
        rows = (await session.execute(select(WebSession))).scalars().all()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in {rows[0].id, rows[0].token_hash}
    assert len(cookie) >= 43  # 256 bits


async def test_a_session_keeps_the_browsers_name_not_its_user_agent(db_web, browsers):
    """The privacy policy says "browser name": the row holds what the sessions list shows, and
    nothing else of the User-Agent (its version, its platform details, a marker in it)."""
    agent = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.86 Safari/537.36 QZXMKmarker"
    )
    email = new_email()
    first, second = browsers(db_web), browsers(db_web)
    await first.sign_up(email)
    second.client.headers["user-agent"] = agent
    assert (await second.sign_in(email)).status_code == 303
    async with db_web.rt.db.read() as session:
        stored = (await session.execute(select(WebSession.browser))).scalars().all()
    assert "Chrome on macOS" in stored
    assert not any(("/" in name or "QZXMK" in name or "131" in name) for name in stored)
    assert "Chrome on macOS" in (await first.get("/settings")).text
    export = (await second.get("/settings/data/export.json")).json()
    assert "Chrome on macOS" in {s["browser"] for s in export["sessions"]}
    assert "QZXMK" not in str(export)


async def test_session_fixation_nothing_from_before_sign_in_survives_it(db_web, browsers):
    email = new_email()
    await browsers(db_web).sign_up(email)
    victim = browsers(db_web)
    token = await victim.token("/login")
    before_csrf = victim.cookie("reapi_csrf")
    chosen = "A" * 43  # an id the attacker made up and planted
    victim.client.cookies.set("reapi_session", chosen, domain="gateway.test")
    response = await victim.client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    after = victim.cookie("reapi_session")
    assert after not in (chosen, before_csrf)  # the server never adopts a client's id
    assert victim.cookie("reapi_csrf") != before_csrf  # the browser id is new too
    assert (await victim.get("/settings")).status_code == 200


async def test_signing_in_ends_the_session_the_browser_had(db_web, browsers):
    """An attacker's own session planted in a victim's browser (login CSRF's way in) ends
    when the victim signs in: it is nobody's way in any more."""
    email = new_email()
    await browsers(db_web).sign_up(email)
    attacker = browsers(db_web)
    await attacker.sign_up(new_email())
    planted = attacker.cookie("reapi_session")
    victim = browsers(db_web)
    victim.client.cookies.set("reapi_session", planted, domain="gateway.test")
    token = await victim.token("/settings")  # the page of the attacker's account
    response = await victim.client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert victim.cookie("reapi_session") != planted
    assert email in (await victim.get("/settings")).text
    assert (await attacker.get("/settings")).status_code == 303


async def test_a_token_from_before_sign_in_is_refused_after_it(web, browsers):
    email = new_email()
    await browsers(web).sign_up(email)
    browser = browsers(web)
    anonymous_token = await browser.token("/login")
    await browser.sign_in(email)
    stale = await browser.client.post("/logout", data={"csrf_token": anonymous_token})
    assert stale.status_code == 403


async def test_sessions_end_after_idle_time_and_at_their_absolute_end(web, browsers, clock):
    browser = browsers(web)
    await browser.sign_up(new_email())
    clock.advance(7 * DAY - 60)
    assert (await browser.get("/settings")).status_code == 200  # used: idle time starts again
    clock.advance(7 * DAY - 60)
    assert (await browser.get("/settings")).status_code == 200
    clock.advance(7 * DAY + 1)
    idle = await browser.get("/settings")
    assert idle.status_code == 303
    assert (
        'reapi_session=""' in idle.headers["set-cookie"]
        or "Max-Age=0" in idle.headers["set-cookie"]
    )

    other = browsers(web)
    await other.sign_up(new_email())
    for _ in range(5):  # used every 5 days, it still ends 30 days after sign-in
        clock.advance(5 * DAY)
        assert (await other.get("/settings")).status_code == 200
    clock.advance(5 * DAY - 1)
    assert (await other.get("/settings")).status_code == 200
    clock.advance(1)
    assert (await other.get("/settings")).status_code == 303


async def test_last_seen_is_written_at_most_once_a_minute(web, browsers, clock):
    browser = browsers(web)
    await browser.sign_up(new_email())

    async def last_seen() -> float:
        async with web.rt.db.read() as session:
            return (await session.execute(select(WebSession.last_seen_at))).scalar_one()

    start = await last_seen()
    clock.advance(30)
    await browser.get("/settings")
    assert await last_seen() == start
    clock.advance(31)
    await browser.get("/settings")
    assert await last_seen() == clock.now


async def test_list_sessions_end_one_and_end_all_others(db_web, browsers):
    email = new_email()
    first = browsers(db_web)
    await first.sign_up(email)
    second, third = browsers(db_web), browsers(db_web)
    for browser, agent in (
        (second, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        (third, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
    ):
        browser.client.headers["user-agent"] = agent
        assert (await browser.sign_in(email)).status_code == 303
    page = await first.get("/settings")
    assert "Firefox on Linux" in page.text and "Safari on iOS" in page.text
    assert page.text.count('class="session') >= 3 and "This browser" in page.text

    sessions = await web_context(db_web).identity.sessions_of(
        (await web_context(db_web).identity.current(second.cookie("reapi_session"))).user.id
    )
    second_id = next(
        s.id
        for s in sessions
        if s.token_hash == hashlib.sha256(second.cookie("reapi_session").encode()).hexdigest()
    )
    ended = await first.submit("/settings", f"/settings/sessions/{second_id}/end", {})
    assert ended.headers["location"] == "/settings?done=session_ended#sessions"
    assert (await second.get("/settings")).status_code == 303
    assert (await third.get("/settings")).status_code == 200

    others = await first.submit("/settings", "/settings/sessions/end-others", {})
    assert others.headers["location"] == "/settings?done=sessions_ended#sessions"
    assert (await third.get("/settings")).status_code == 303
    assert (await first.get("/settings")).status_code == 200


async def test_no_one_ends_another_users_session(web, browsers):
    mine, theirs = browsers(web), browsers(web)
    await mine.sign_up(new_email())
    await theirs.sign_up(new_email())
    identity = web_context(web).identity
    their = await identity.current(theirs.cookie("reapi_session"))
    response = await mine.submit("/settings", f"/settings/sessions/{their.id}/end", {})
    assert response.status_code == 303
    assert (await theirs.get("/settings")).status_code == 200


@pytest.mark.parametrize("value", ["", "garbage", "x" * 43, "A" * 500])
async def test_a_bad_session_cookie_is_a_visitor_not_an_error(web, value):
    browser = Browser(web.app)
    browser.client.cookies.set("reapi_session", value, domain="gateway.test")
    response = await browser.get("/settings")
    assert response.status_code == 303
    assert (await browser.get("/login")).status_code == 200
    await browser.aclose()


async def test_the_cookie_of_an_ended_session_is_cleared(web, browsers):
    email = new_email()
    browser = browsers(web)
    await browser.sign_up(email)
    cookie = browser.cookie("reapi_session")
    await web_context(web).identity.sign_out(cookie)
    response = await browser.get("/login")
    assert "reapi_session=" in response.headers.get("set-cookie", "")
    assert (await browser.sign_in(email, PASSWORD)).status_code == 303


async def test_housekeeping_deletes_ended_sessions_old_tokens_and_throttles(
    db_web, browsers, clock
):
    from reapi_server.identity.housekeeping import purge_once
    from reapi_server.models import AuthThrottle, UserToken

    email = new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    await browsers(db_web).sign_in(email, "a wrong password here")
    policy = web_context(db_web).identity.config.sessions
    rt = db_web.rt

    async def count(model) -> int:
        async with rt.db.read() as session:
            return len((await session.execute(select(model))).scalars().all())

    assert await purge_once(rt.db, policy, clock.now) == 0
    # The session, the verification token; the sign-up count, the two failure counts.
    assert (await count(WebSession), await count(UserToken), await count(AuthThrottle)) == (
        1,
        1,
        3,
    )
    clock.advance(8 * DAY)  # idle past 7 days; the token a day past its expiry
    assert await purge_once(rt.db, policy, clock.now) == 1 + 1 + 3
    assert (await count(WebSession), await count(UserToken), await count(AuthThrottle)) == (
        0,
        0,
        0,
    )
