"""Third-party code an operator may enable, and nothing unless they do: Cloudflare Turnstile on
the sign-up and password reset forms (verified with the simulated siteverify on loopback,
before anything else), a chat-support widget, and what follows from each — the CSP, the
cookie policy, the subprocessors in the privacy policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from tests.web.conftest import BASE
from tests.web.helpers import PASSWORD, new_email

from reapi.testing import Fault, SimServer
from reapi_server.config import Settings
from reapi_server.legal.subprocessors import as_markdown, subprocessors
from reapi_server.models import AuthThrottle, OutboxMessage, User
from reapi_server.testing.turnstile_sim import (
    SITEVERIFY_PATH,
    TURNSTILE_SECRET,
    TurnstileSimulator,
)
from reapi_server.web.security import CSP

SITE_KEY = "0x4AAAAAAAreapi-site-key"
TURNSTILE_SCRIPT = (
    '<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>'
)
CHAT = {
    "chat_widget_script_url": "https://widget.chat.example/loader.js?site=42",
    "chat_widget_csp_sources": ["https://api.chat.example", "wss://live.chat.example"],
    "chat_widget_name": "ChatCo",
    "chat_widget_cookies": ["chatco_visitor", "chatco_session"],
}


@pytest.fixture
def turnstile():
    sim = TurnstileSimulator()
    with SimServer(sim) as server:
        yield sim, server


def _turnstile_settings(server, secret=TURNSTILE_SECRET):
    return {
        "turnstile_site_key": SITE_KEY,
        "turnstile_secret_key": secret,
        "turnstile_verify_url": server.base_url + SITEVERIFY_PATH,
    }


@pytest.fixture
async def guarded(make_gateway, turnstile):
    _, server = turnstile
    return await make_gateway(public_base_url=BASE, **_turnstile_settings(server))


async def _users(gateway) -> int:
    async with gateway.rt.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


def _sign_up_form(email, token=None, password=PASSWORD):
    form = {"email": email, "password": password, "age_16_plus": "yes", "accept_terms": "yes"}
    if token is not None:
        form["cf-turnstile-response"] = token
    return form


# -- Turnstile -------------------------------------------------------------------------------------


async def test_without_turnstile_no_widget_no_script_and_the_strict_csp(web, browsers):
    browser = browsers(web)
    for path in ("/signup", "/reset", "/login"):
        page = await browser.get(path)
        assert "cf-turnstile" not in page.text and "<script" not in page.text
        assert page.headers["content-security-policy"] == CSP
    assert "frame-src" not in CSP and "challenges.cloudflare.com" not in CSP
    assert (
        await browser.submit("/signup", "/signup", _sign_up_form(new_email()))
    ).status_code == 303


async def test_sign_up_shows_the_widget_and_the_csp_allows_exactly_cloudflare(guarded, browsers):
    page = await browsers(guarded).get("/signup")
    assert f'data-sitekey="{SITE_KEY}"' in page.text and 'data-action="signup"' in page.text
    assert TURNSTILE_SCRIPT in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' https://challenges.cloudflare.com;" in csp
    assert "frame-src https://challenges.cloudflare.com;" in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    login = await browsers(guarded).get("/login")
    assert "cf-turnstile" not in login.text and "<script" not in login.text


async def test_sign_up_passes_with_a_good_token_only(guarded, browsers, turnstile):
    sim, _ = turnstile
    browser = browsers(guarded)
    for token in (None, "", "nope"):
        refused = await browser.submit("/signup", "/signup", _sign_up_form(new_email(), token))
        assert refused.status_code == 400, token
        assert 'id="f-turnstile-error"' in refused.text
        assert "Complete the check that you are a person" in refused.text
    assert await _users(guarded) == 0
    assert sim.verifications == 1  # an empty token is refused without asking Cloudflare

    email = new_email()
    created = await browser.submit("/signup", "/signup", _sign_up_form(email, "pass-1"))
    assert created.status_code == 303 and await _users(guarded) == 1
    assert sim.last_request["remoteip"] == "127.0.0.1"
    assert sim.last_request["response"] == "pass-1"

    again = await browsers(guarded).submit(
        "/signup", "/signup", _sign_up_form(new_email(), "pass-1")
    )
    assert again.status_code == 400 and await _users(guarded) == 1  # a token passes once
    assert sim.outcomes == {"invalid-input-response": 1, "success": 1, "timeout-or-duplicate": 1}


async def test_the_check_comes_before_anything_else(guarded, browsers):
    refused = await browsers(guarded).submit(
        "/signup", "/signup", _sign_up_form("not an email", "nope", password="short")
    )
    assert refused.status_code == 400 and 'id="f-turnstile-error"' in refused.text
    assert 'id="f-password-error"' not in refused.text  # the form was not looked at
    assert 'id="f-email-error"' not in refused.text
    async with guarded.rt.db.read() as session:
        counted = (await session.execute(select(func.count()).select_from(AuthThrottle))).scalar()
    assert counted == 0


async def test_a_token_made_for_another_form_does_not_pass(guarded, browsers, turnstile):
    sim, _ = turnstile
    token = sim.issue_token(action="reset")
    refused = await browsers(guarded).submit(
        "/signup", "/signup", _sign_up_form(new_email(), token)
    )
    assert refused.status_code == 400 and await _users(guarded) == 0
    fitting = sim.issue_token(action="signup")
    created = await browsers(guarded).submit(
        "/signup", "/signup", _sign_up_form(new_email(), fitting)
    )
    assert created.status_code == 303


async def test_password_reset_is_checked_too(guarded, browsers):
    browser = browsers(guarded)
    page = await browser.get("/reset")
    assert 'data-action="reset"' in page.text and TURNSTILE_SCRIPT in page.text
    refused = await browser.submit("/reset", "/reset", {"email": "someone@example.com"})
    assert refused.status_code == 400 and 'id="f-turnstile-error"' in refused.text
    sent = await browser.submit(
        "/reset", "/reset", {"email": "someone@example.com", "cf-turnstile-response": "pass"}
    )
    assert sent.status_code == 200 and "Check your email" in sent.text
    assert TURNSTILE_SCRIPT not in sent.text  # no form, no widget


async def test_no_answer_from_cloudflare_refuses_the_form(guarded, browsers, turnstile):
    _, server = turnstile
    server.faults.set(Fault.ERROR_500, count=1)
    refused = await browsers(guarded).submit(
        "/signup", "/signup", _sign_up_form(new_email(), "pass")
    )
    assert refused.status_code == 503 and "could not be completed" in refused.text
    server.faults.set(Fault.REFUSE, count=1)
    refused = await browsers(guarded).submit(
        "/reset", "/reset", {"email": "a@example.com", "cf-turnstile-response": "pass"}
    )
    assert refused.status_code == 503
    assert await _users(guarded) == 0
    async with guarded.rt.db.read() as session:
        assert (
            await session.execute(select(func.count()).select_from(OutboxMessage))
        ).scalar() == 0


async def test_a_wrong_secret_is_the_operators_problem_not_the_persons(
    make_gateway, browsers, turnstile, caplog
):
    _, server = turnstile
    gateway = await make_gateway(public_base_url=BASE, **_turnstile_settings(server, "wrong"))
    refused = await browsers(gateway).submit(
        "/signup", "/signup", _sign_up_form(new_email(), "pass")
    )
    assert refused.status_code == 503 and await _users(gateway) == 0
    assert any(r.getMessage() == "turnstile refused our request" for r in caplog.records)
    assert "wrong" not in caplog.text


def test_turnstile_needs_both_keys(tmp_path):
    with pytest.raises(ValidationError, match="both"):
        Settings(data_dir=tmp_path, turnstile_site_key=SITE_KEY)
    with pytest.raises(ValidationError, match="both"):
        Settings(data_dir=tmp_path, turnstile_secret_key="s")


# -- the chat widget -----------------------------------------------------------------------------


async def test_the_chat_widget_loads_as_an_external_script_allowed_only_when_configured(
    make_gateway, browsers
):
    chat = await make_gateway(public_base_url=BASE, **CHAT)
    browser = browsers(chat)
    for path in ("/login", "/signup", "/legal/privacy", "/no-such-page"):
        page = await browser.get(path)
        assert '<script src="https://widget.chat.example/loader.js?site=42" async></script>' in (
            page.text
        ), path
        assert page.text.count("<script") == 1  # that one, external: no inline script
        csp = page.headers["content-security-policy"]
        assert "script-src 'self' https://widget.chat.example https://api.chat.example;" in csp
        assert "connect-src 'self' https://api.chat.example wss://live.chat.example;" in csp
        assert "frame-src https://api.chat.example;" in csp
        assert "'unsafe-inline'" not in csp and "challenges.cloudflare.com" not in csp
    plain = await make_gateway(public_base_url=BASE)
    page = await browsers(plain).get("/login")
    assert (
        "chat.example" not in page.text
        and "chat.example" not in page.headers["content-security-policy"]
    )


@pytest.mark.parametrize(
    "values",
    [
        {"chat_widget_script_url": "javascript:alert(1)"},
        {"chat_widget_script_url": "http://widget.chat.example/x.js"},
        {"chat_widget_script_url": 'https://w.example/x.js" onload="x'},
        {"chat_widget_csp_sources": ["https://x.example; script-src *"]},
        {"chat_widget_csp_sources": ["'unsafe-inline'"]},
        {"chat_widget_csp_sources": ["*"]},
    ],
)
def test_chat_settings_that_would_weaken_the_csp_are_refused(tmp_path, values):
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **values)


# -- the cookie policy and the subprocessors -------------------------------------------------------


async def test_the_cookie_policy_lists_turnstile_and_chat_exactly_when_enabled(
    make_gateway, browsers, turnstile
):
    _, server = turnstile
    plain = await browsers(await make_gateway(public_base_url=BASE)).get("/legal/cookies")
    assert "Turnstile" not in plain.text and "Chat support" not in plain.text
    assert plain.text.count('class="cookie"') == 2

    both = await make_gateway(public_base_url=BASE, **_turnstile_settings(server), **CHAT)
    page = await browsers(both).get("/legal/cookies")
    assert page.text.count('class="cookie"') == 4
    assert (
        "Cloudflare Turnstile" in page.text
        and "Cloudflare (challenges.cloudflare.com)" in page.text
    )
    assert "Chat support" in page.text and "ChatCo (widget.chat.example)" in page.text
    assert "chatco_visitor, chatco_session" in page.text
    assert "nothing is shared with anyone else" not in page.text

    only_turnstile = await make_gateway(public_base_url=BASE, **_turnstile_settings(server))
    page = await browsers(only_turnstile).get("/legal/cookies")
    assert page.text.count('class="cookie"') == 3 and "Chat support" not in page.text


def test_subprocessors_gain_github_google_cloudflare_and_chat_when_configured(tmp_path):
    plain = as_markdown(subprocessors(Settings(data_dir=tmp_path), {}))
    assert plain == "- none"
    configured = Settings(
        data_dir=tmp_path,
        oauth={
            "github": {"client_id": "a", "client_secret": "b"},
            "google": {"client_id": "c", "client_secret": "d"},
        },
        turnstile_site_key=SITE_KEY,
        turnstile_secret_key="s",
        **CHAT,
    )
    listed = as_markdown(subprocessors(configured, {}))
    for name in (
        "**GitHub**",
        "**Google**",
        "**Cloudflare (Turnstile)**",
        "**ChatCo (widget.chat.example)**",
    ):
        assert name in listed
    only_github = Settings(
        data_dir=tmp_path, oauth={"github": {"client_id": "a", "client_secret": "b"}}
    )
    listed = as_markdown(subprocessors(only_github, {}))
    assert "**GitHub**" in listed and "Google" not in listed and "Cloudflare" not in listed


async def test_the_privacy_policy_names_them(make_gateway, browsers, turnstile):
    _, server = turnstile
    gateway = await make_gateway(public_base_url=BASE, **_turnstile_settings(server))
    page = await browsers(gateway).get("/legal/privacy")
    assert "Cloudflare (Turnstile)" in page.text and "GitHub or Google" in page.text


async def test_a_refusal_carries_nothing_of_the_failed_call(turnstile):
    """The httpx error's request holds the secret: the refusal raised in its place must not
    keep it as its context."""
    from tests.server.live import free_port

    from reapi_server.web.turnstile import BotCheckUnavailable, Turnstile

    closed = Turnstile(SITE_KEY, "the-secret", f"http://127.0.0.1:{free_port()}/siteverify")
    with pytest.raises(BotCheckUnavailable) as refused:
        await closed.verify("pass", remote_ip="127.0.0.1", action="signup")
    assert refused.value.__context__ is None and refused.value.__cause__ is None
