"""The simulated GitHub and Google, driven the way the gateway will drive them: authlib's
Starlette client (authorization code + PKCE, and OpenID Connect for Google) on one side, a
person pressing the chooser page's buttons on the other. Real sockets throughout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from tests.server.sim_browser import choose, press, read_form

from reapi.testing import Fault, SimServer
from reapi_server.testing.oauth_sim import (
    CODE_TTL,
    GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    FakeEmail,
    FakeIdentity,
    GitHubSimulator,
    GoogleSimulator,
)

CALLBACK = "http://127.0.0.1:9/auth/callback"  # never fetched: redirects are not followed


class Clock:
    """Real time until a test moves it on (id_tokens are checked against the real clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def github(clock: Clock) -> Iterator[SimServer]:
    with SimServer(GitHubSimulator(clock=clock)) as server:
        yield server


@pytest.fixture
def google(clock: Clock) -> Iterator[SimServer]:
    with SimServer(GoogleSimulator(clock=clock)) as server:
        yield server


def github_client(server: SimServer, secret: str = GITHUB_CLIENT_SECRET):
    oauth = OAuth()
    return oauth.register(
        "github",
        client_id=GITHUB_CLIENT_ID,
        client_secret=secret,
        client_kwargs={"scope": "read:user user:email", "code_challenge_method": "S256"},
        **GitHubSimulator.endpoints(server.base_url),
    )


def google_client(server: SimServer, secret: str = GOOGLE_CLIENT_SECRET, **client_kwargs):
    oauth = OAuth()
    return oauth.register(
        "google",
        client_id=GOOGLE_CLIENT_ID,
        client_secret=secret,
        server_metadata_url=GoogleSimulator.metadata_url(server.base_url),
        client_kwargs={
            "scope": "openid email profile",
            "code_challenge_method": "S256",
            **client_kwargs,
        },
    )


# -- GitHub -------------------------------------------------------------------------------------
async def test_github_full_flow_with_pkce_and_state(github, browser):
    client = github_client(github)
    started = await client.create_authorization_url(CALLBACK)
    sent = query_of(started["url"])
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"]

    callback = choose(browser, started["url"], "1001")
    assert callback.startswith(CALLBACK + "?")
    back = query_of(callback)
    assert back["state"] == started["state"] and back["code"]

    token = await client.fetch_access_token(
        redirect_uri=CALLBACK, code=back["code"], code_verifier=started["code_verifier"]
    )
    assert token["access_token"].startswith("gho_")
    assert token["token_type"] == "bearer" and token["scope"] == "read:user,user:email"

    user = (await client.get("user", token=token)).json()
    assert (user["id"], user["login"], user["name"]) == (1001, "ada", "Ada Lovelace")
    assert user["email"] == "ada@example.com"
    emails = (await client.get("user/emails", token=token)).json()
    assert emails == [
        {"email": "ada@example.com", "primary": True, "verified": True, "visibility": "public"}
    ]

    sim: GitHubSimulator = github.app
    assert sim.token_exchanges == 1
    last = sim.last_authorize
    assert last is not None and last["state"] == started["state"]
    assert last["redirect_uri"] == CALLBACK and last["scope"] == "read:user user:email"


async def test_github_refuses_a_wrong_verifier_a_reused_code_and_a_wrong_secret(github, browser):
    client = github_client(github)

    started = await client.create_authorization_url(CALLBACK)
    code = query_of(choose(browser, started["url"], "1001"))["code"]
    with pytest.raises(OAuthError) as wrong:
        await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier="x" * 43)
    assert wrong.value.error == "bad_verification_code"

    started = await client.create_authorization_url(CALLBACK)
    code = query_of(choose(browser, started["url"], "1001"))["code"]
    verifier = started["code_verifier"]
    with pytest.raises(OAuthError) as bad_secret:
        await github_client(github, "not-the-secret").fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=verifier
        )
    assert bad_secret.value.error == "incorrect_client_credentials"
    # a refused client does not use the code up
    await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused:
        await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier=verifier)
    assert reused.value.error == "bad_verification_code"

    sim: GitHubSimulator = github.app
    assert sim.token_exchanges == 1
    assert sim.token_errors == {"bad_verification_code": 2, "incorrect_client_credentials": 1}


async def test_github_codes_expire_after_ten_minutes(github, browser, clock):
    client = github_client(github)
    started = await client.create_authorization_url(CALLBACK)
    code = query_of(choose(browser, started["url"], "1001"))["code"]
    clock.now += CODE_TTL + 1
    with pytest.raises(OAuthError) as expired:
        await client.fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"]
        )
    assert expired.value.error == "bad_verification_code"


def test_github_answers_form_encoded_without_accept_json_and_errors_with_200(github, browser):
    url = (
        github.base_url
        + "/login/oauth/authorize?"
        + httpx.QueryParams(
            client_id=GITHUB_CLIENT_ID, redirect_uri=CALLBACK, scope="read:user", state="s1"
        ).__str__()
    )
    code = query_of(choose(browser, url, "1001"))["code"]
    token_url = github.base_url + "/login/oauth/access_token"
    form = {"client_id": GITHUB_CLIENT_ID, "client_secret": GITHUB_CLIENT_SECRET, "code": code}
    answer = browser.post(token_url, data=form)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(answer.text)
    assert fields["access_token"][0].startswith("gho_")
    assert fields["token_type"] == ["bearer"] and fields["scope"] == ["read:user"]

    again = browser.post(token_url, data=form, headers={"accept": "application/json"})
    assert again.status_code == 200  # GitHub's refusals are 200 with an error field
    assert again.json()["error"] == "bad_verification_code"
    assert again.json()["error_description"] == "The code passed is incorrect or expired."


def test_github_cancel_redirects_with_access_denied_and_the_state(github, browser):
    url = (
        github.base_url
        + "/login/oauth/authorize?"
        + str(httpx.QueryParams(client_id=GITHUB_CLIENT_ID, redirect_uri=CALLBACK, state="st-9"))
    )
    answer = press(browser, url, ("cancel", "1"))
    assert answer.status_code == 302
    back = query_of(answer.headers["location"])
    assert back["error"] == "access_denied" and back["state"] == "st-9"
    assert "code" not in back


def test_github_sends_a_mismatched_redirect_uri_back_to_the_registered_callback(browser):
    with SimServer(GitHubSimulator(redirect_uris=[CALLBACK])) as server:
        asked = "http://127.0.0.1:9/elsewhere"
        url = (
            server.base_url
            + "/login/oauth/authorize?"
            + str(httpx.QueryParams(client_id=GITHUB_CLIENT_ID, redirect_uri=asked, state="z"))
        )
        answer = browser.get(url)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(CALLBACK + "?")
        assert query_of(location)["error"] == "redirect_uri_mismatch"
        # an unknown client gets GitHub's 404 page, no redirect
        unknown = browser.get(server.base_url + "/login/oauth/authorize?client_id=nope")
        assert unknown.status_code == 404 and "location" not in unknown.headers


def test_github_refuses_plain_pkce(github, browser):
    url = (
        github.base_url
        + "/login/oauth/authorize?"
        + str(
            httpx.QueryParams(
                client_id=GITHUB_CLIENT_ID,
                redirect_uri=CALLBACK,
                code_challenge="abc",
                code_challenge_method="plain",
            )
        )
    )
    answer = browser.get(url)
    assert answer.status_code == 302
    assert query_of(answer.headers["location"])["error"] == "invalid_request"


async def test_github_private_and_unverified_emails(github, browser):
    client = github_client(github)

    async def sign_in(identity_id: str) -> dict[str, str]:
        started = await client.create_authorization_url(CALLBACK)
        code = query_of(choose(browser, started["url"], identity_id))["code"]
        return await client.fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"]
        )

    grace = await sign_in("1002")
    assert (await client.get("user", token=grace)).json()["email"] is None
    assert (await client.get("user/emails", token=grace)).json() == [
        {"email": "grace@example.com", "primary": True, "verified": True, "visibility": "private"},
        {
            "email": "grace@old.example.org",
            "primary": False,
            "verified": False,
            "visibility": "private",
        },
    ]
    mallory = await sign_in("1003")
    emails = (await client.get("user/emails", token=mallory)).json()
    assert [(e["email"], e["verified"]) for e in emails] == [("mallory@example.com", False)]


def test_github_api_needs_a_token_and_the_email_scope(github, browser):
    sim: GitHubSimulator = github.app
    bad = browser.get(github.base_url + "/user", headers={"authorization": "Bearer gho_nope"})
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"

    token = sim.codes.access_token("1001", "read:user")
    for scheme in ("Bearer", "token"):
        user = browser.get(
            github.base_url + "/user", headers={"authorization": f"{scheme} {token}"}
        )
        assert user.status_code == 200 and user.json()["login"] == "ada"
    emails = browser.get(
        github.base_url + "/user/emails", headers={"authorization": f"Bearer {token}"}
    )
    assert emails.status_code == 404


def test_github_status_faults_speak_githubs_json(github, browser):
    github.faults.set(Fault.ERROR_503, count=1)
    answer = browser.get(github.base_url + "/user")
    assert answer.status_code == 503 and answer.json()["message"] == "Server Error"
    github.faults.set(Fault.RATE_LIMIT, retry_after=7, count=1)
    limited = browser.get(github.base_url + "/user")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"


# -- the chooser page and the control endpoints ------------------------------------------------
def test_the_chooser_page_lists_every_identity_escaped_with_cancel(github, browser):
    sim: GitHubSimulator = github.app
    sim.add_identity(FakeIdentity(id="2001", login="x", name="<b>Eve</b>", email="e@x.test"))
    url = (
        github.base_url
        + "/login/oauth/authorize?"
        + str(httpx.QueryParams(client_id=GITHUB_CLIENT_ID, redirect_uri=CALLBACK, state='"><x'))
    )
    page = browser.get(url)
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Sign in to reapi with GitHub (simulated)" in page.text
    assert "<b>Eve</b>" not in page.text and "&lt;b&gt;Eve&lt;/b&gt;" in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[0]
    form = read_form(page.text)
    assert form.fields["state"] == '"><x'
    assert form.buttons == [
        ("identity", "1001"),
        ("identity", "1002"),
        ("identity", "1003"),
        ("identity", "2001"),
        ("cancel", "1"),
    ]
    assert "Email address not verified" in page.text  # mallory


def test_control_endpoints_set_identities_read_state_and_sign_in(github, browser):
    control = github.base_url + "/__sim__/oauth"
    people = [
        {"id": 42, "login": "neo", "name": "Thomas Anderson", "email": "neo@example.com"},
        {
            "id": "43",
            "login": "trin",
            "name": "Trinity",
            "email": None,
            "other_emails": [{"email": "t@example.com", "verified": False}],
        },
    ]
    listed = browser.put(control + "/identities", content=json.dumps(people))
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == ["42", "43"]
    another = {"id": "44", "name": "Z", "email": "z@x.test", "login": "z"}
    added = browser.post(control + "/identities", content=json.dumps(another))
    assert added.status_code == 200
    refused = browser.post(control + "/identities", content=b'{"id": "45", "colour": "red"}')
    assert refused.status_code == 400 and "colour" in refused.json()["error"]

    sim: GitHubSimulator = github.app
    assert [i.id for i in sim.identities] == ["42", "43", "44"]
    assert sim.identity("43") == FakeIdentity(
        id="43",
        login="trin",
        name="Trinity",
        email=None,
        other_emails=(FakeEmail("t@example.com", verified=False),),
    )

    assert browser.put(control + "/signed-in", content=b'{"id": "42"}').json() == {
        "signed_in": "42"
    }
    url = (
        github.base_url
        + "/login/oauth/authorize?"
        + str(httpx.QueryParams(client_id=GITHUB_CLIENT_ID, redirect_uri=CALLBACK, state="q"))
    )
    at_once = browser.get(url)
    assert at_once.status_code == 302 and query_of(at_once.headers["location"])["code"]
    state = browser.get(control + "/state").json()
    assert state["authorize_requests"] == 1 and state["signed_in"] == "42"
    assert state["last_authorize"]["state"] == "q"
    # faults never reach the control paths
    github.faults.set(Fault.ERROR_500)
    assert browser.get(control + "/state").status_code == 200


# -- Google -------------------------------------------------------------------------------------
async def test_google_openid_connect_flow_with_nonce_pkce_and_jwks(google, browser):
    client = google_client(google)
    started = await client.create_authorization_url(CALLBACK, nonce="n-0S6_WzA2Mj")
    sent = query_of(started["url"])
    assert sent["response_type"] == "code" and sent["nonce"] == "n-0S6_WzA2Mj"
    assert sent["code_challenge_method"] == "S256"

    back = query_of(choose(browser, started["url"], "100000000000000000001"))
    assert back["state"] == started["state"]
    token = await client.fetch_access_token(
        redirect_uri=CALLBACK, code=back["code"], code_verifier=started["code_verifier"]
    )
    assert token["access_token"].startswith("ya29.") and token["token_type"] == "Bearer"
    assert "https://www.googleapis.com/auth/userinfo.email" in token["scope"].split()

    claims = await client.parse_id_token(token, nonce="n-0S6_WzA2Mj")
    assert claims["iss"] == google.base_url and claims["aud"] == GOOGLE_CLIENT_ID
    assert claims["sub"] == "100000000000000000001"
    assert (claims["email"], claims["email_verified"]) == ("ada@example.com", True)
    assert claims["name"] == "Ada Lovelace" and claims["exp"] - claims["iat"] == 3600

    # the id_token verifies against the published JWKS, on its own
    keys = KeySet.import_key_set(browser.get(google.base_url + "/oauth2/v3/certs").json())
    decoded = jwt.decode(token["id_token"], keys)
    assert decoded.header["alg"] == "RS256" and decoded.claims["nonce"] == "n-0S6_WzA2Mj"

    info = await client.userinfo(token=token)
    assert info["sub"] == claims["sub"] and info["email_verified"] is True

    with pytest.raises(JoseError):  # another nonce: a replayed id_token is refused
        await client.parse_id_token(token, nonce="another")
    assert google.app.token_exchanges == 1


async def test_google_reports_an_unverified_email_as_such(google, browser):
    client = google_client(google)
    started = await client.create_authorization_url(CALLBACK, nonce="n1")
    code = query_of(choose(browser, started["url"], "100000000000000000003"))["code"]
    token = await client.fetch_access_token(
        redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"]
    )
    claims = await client.parse_id_token(token, nonce="n1")
    assert (claims["email"], claims["email_verified"]) == ("mallory@example.com", False)
    assert (await client.userinfo(token=token))["email_verified"] is False


async def test_google_refuses_wrong_verifier_reuse_wrong_secret_and_wrong_redirect(google, browser):
    client = google_client(google)

    async def code_for() -> tuple[str, str]:
        started = await client.create_authorization_url(CALLBACK, nonce="n")
        code = query_of(choose(browser, started["url"], "100000000000000000001"))["code"]
        return code, started["code_verifier"]

    code, _ = await code_for()
    with pytest.raises(OAuthError) as wrong:
        await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier="y" * 43)
    assert (wrong.value.error, wrong.value.description) == (
        "invalid_grant",
        "Invalid code verifier.",
    )

    code, verifier = await code_for()
    with pytest.raises(OAuthError) as bad_secret:
        await google_client(google, "GOCSPX-wrong").fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=verifier
        )
    assert bad_secret.value.error == "invalid_client"
    await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused:
        await client.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier=verifier)
    assert reused.value.error == "invalid_grant"

    code, verifier = await code_for()
    with pytest.raises(OAuthError) as elsewhere:
        await client.fetch_access_token(
            redirect_uri=CALLBACK + "/other", code=code, code_verifier=verifier
        )
    assert elsewhere.value.error == "redirect_uri_mismatch"


def test_google_token_endpoint_status_codes_and_secret_in_the_form(google, browser):
    url = (
        google.base_url
        + "/o/oauth2/v2/auth?"
        + str(
            httpx.QueryParams(
                client_id=GOOGLE_CLIENT_ID,
                redirect_uri=CALLBACK,
                response_type="code",
                scope="openid email",
                state="s",
            )
        )
    )
    code = query_of(choose(browser, url, "100000000000000000002"))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret": "wrong",
    }
    token_url = google.base_url + "/token"
    assert browser.post(token_url, data=form).status_code == 401
    answer = browser.post(token_url, data={**form, "client_secret": GOOGLE_CLIENT_SECRET})
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 3599 and "id_token" in body
    assert (
        "name" not in jwt.decode(body["id_token"], KeySet.import_key_set(google.app.jwks())).claims
    )  # no profile scope, no name
    again = browser.post(token_url, data={**form, "client_secret": GOOGLE_CLIENT_SECRET})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    grant_type = browser.post(token_url, data={**form, "grant_type": "password"})
    assert grant_type.status_code == 400 and grant_type.json()["error"] == "unsupported_grant_type"


def test_google_error_pages_cancel_and_discovery(browser):
    with SimServer(GoogleSimulator(redirect_uris=[CALLBACK])) as server:
        base = server.base_url + "/o/oauth2/v2/auth?"
        unregistered = browser.get(
            base
            + str(
                httpx.QueryParams(
                    client_id=GOOGLE_CLIENT_ID,
                    redirect_uri="http://127.0.0.1:9/other",
                    response_type="code",
                    scope="openid",
                )
            )
        )
        assert unregistered.status_code == 400 and "redirect_uri_mismatch" in unregistered.text
        assert "location" not in unregistered.headers
        unknown = browser.get(base + "client_id=nope&redirect_uri=" + CALLBACK)
        assert unknown.status_code == 401 and "invalid_client" in unknown.text

        good = base + str(
            httpx.QueryParams(
                client_id=GOOGLE_CLIENT_ID,
                redirect_uri=CALLBACK,
                response_type="code",
                scope="openid email profile",
                state="abc",
            )
        )
        cancelled = press(browser, good, ("cancel", "1"))
        assert query_of(cancelled.headers["location"]) == {"error": "access_denied", "state": "abc"}
        assert "Sign in to reapi with Google (simulated)" in browser.get(good).text

        meta = browser.get(GoogleSimulator.metadata_url(server.base_url)).json()
        assert meta["issuer"] == server.base_url
        assert meta["authorization_endpoint"] == server.base_url + "/o/oauth2/v2/auth"
        assert meta["jwks_uri"] == server.base_url + "/oauth2/v3/certs"
        assert "S256" in meta["code_challenge_methods_supported"]
