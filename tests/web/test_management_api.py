"""The management API (/api/keys, /api/balance): a signed-in browser with its CSRF token, or a
management key (`rk_mgmt_...`) with no cookie at all; never a model key. JSON in, JSON out,
errors in OpenAI's shape."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from tests.server.helpers import auth
from tests.web.helpers import Browser, mail_to, new_email

from reapi_server.accounts.personal_data import PersonalData
from reapi_server.accounts.repository import mark_deleted, set_disabled
from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import keys_service
from reapi_server.errors import InvalidApiKey
from reapi_server.identity import repository as users
from reapi_server.models import Account, ApiKey

PRICE = 40  # gpt-image-2 in the test catalog


async def verified(gateway, browser: Browser) -> str:
    """Sign up and verify through the mail's link; the account id."""
    email = new_email()
    await browser.sign_up(email)
    [mail] = await mail_to(gateway.rt, email)
    confirmed = await browser.submit("/settings", "/verify", {"token": mail.token("/verify")})
    assert confirmed.status_code == 303
    return await account_id_of(gateway, email)


async def account_id_of(gateway, email: str) -> str:
    async with gateway.rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
        account = await account_of(session, user.id)
    return account.id


def error_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def grant(gateway, account: str, credits: int) -> None:
    from reapi_server.credits.service import grant as grant_credits

    async with gateway.rt.db.write() as session:
        await grant_credits(session, account, credits, gateway.rt.now())


async def management_key(gateway, account: str) -> str:
    created = await keys_service(gateway.rt).create(account, name="ops", kind="management")
    return created.plaintext


# -- the browser's session -----------------------------------------------------------------------


async def test_a_signed_in_browser_manages_its_keys_with_its_csrf_token(db_web, browsers):
    browser = browsers(db_web)
    account = await verified(db_web, browser)
    await grant(db_web, account, 1000)
    token = await browser.token("/settings")
    client = browser.client

    listed = await client.get("/api/keys")
    assert listed.status_code == 200
    assert listed.json() == {"object": "list", "data": [], "has_more": False, "next_cursor": None}

    body = {"name": "ci", "limits": {"spend_limit": PRICE, "spend_period": "daily"}}
    without_token = await client.post("/api/keys", json=body)
    assert without_token.status_code == 403
    assert error_of(without_token)["code"] == "csrf_failed"

    created = await client.post("/api/keys", json=body, headers={"x-csrf-token": token})
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key.pop("key")
    assert secret.startswith("rk_live_") and key["last4"] == secret[-4:]
    assert key["object"] == "api_key" and key["name"] == "ci" and key["kind"] == "model"
    assert key["status"] == "active" and key["prefix"] == "rk_live_"
    assert key["limits"] == {
        "spend_limit": PRICE,
        "spend_period": "daily",
        "models": None,
        "expires_at": None,
        "requests_per_minute": None,
        "max_concurrent_videos": None,
    }
    assert key["spend"]["current"] == 0 and key["spend"]["limit"] == PRICE
    assert key["spend"]["resets_at"] > db_web.rt.now()
    assert secret not in (await client.get("/api/keys")).text  # shown once

    # The key works on /v1, and its limit with it.
    v1 = db_web.client
    first = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert first.status_code == 200
    second = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert second.status_code == 402
    shown = (await client.get(f"/api/keys/{key['id']}")).json()
    assert shown["spend"]["current"] == PRICE  # the counter the limit is checked against

    raised = await client.patch(
        f"/api/keys/{key['id']}",
        json={"limits": {"spend_limit": None, "models": ["gpt-image-2"]}, "name": "ci-2"},
        headers={"x-csrf-token": token},
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["name"] == "ci-2"
    assert raised.json()["limits"]["spend_limit"] is None
    assert raised.json()["limits"]["models"] == ["gpt-image-2"]
    assert raised.json()["limits"]["spend_period"] == "daily"  # untouched
    third = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert third.status_code == 200

    revoked = await client.delete(f"/api/keys/{key['id']}", headers={"x-csrf-token": token})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    gone = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert gone.status_code == 401

    balance = await client.get("/api/balance")
    assert balance.json() == {"object": "balance", "balance": 1000 - 2 * PRICE, "reserved": 0}


async def test_an_unverified_user_may_read_but_not_create_keys(web, browsers):
    browser = browsers(web)
    await browser.sign_up(new_email())
    token = await browser.token("/settings")
    assert (await browser.client.get("/api/keys")).status_code == 200
    refused = await browser.client.post(
        "/api/keys", json={"name": "x"}, headers={"x-csrf-token": token}
    )
    assert refused.status_code == 403 and error_of(refused)["code"] == "email_not_verified"


async def test_without_a_session_or_a_key_it_is_401(web):
    for method, path in (("GET", "/api/keys"), ("GET", "/api/balance"), ("GET", "/api/keys/k")):
        response = await web.client.request(method, path)
        assert response.status_code == 401, path
        assert error_of(response)["code"] == "missing_api_key"
    posted = await web.client.post("/api/keys", json={"name": "x"})
    assert posted.status_code in (401, 403)
    error_of(posted)


# -- management keys -----------------------------------------------------------------------------


async def test_a_management_key_needs_no_cookie_and_no_csrf_token(db_web):
    gateway = db_web
    account, _ = await gateway.account(credits=500)
    mgmt = await management_key(gateway, account)
    api = gateway.client  # no cookies, no token

    created = await api.post(
        "/api/keys",
        json={
            "name": "batch",
            "limits": {
                "models": ["sim-video"],
                "expires_at": int(gateway.rt.now()) + 86_400,
                "requests_per_minute": 30,
                "max_concurrent_videos": 2,
            },
        },
        headers=auth(mgmt),
    )
    assert created.status_code == 201, created.text
    key_id, secret = created.json()["id"], created.json()["key"]
    listed = (await api.get("/api/keys", headers=auth(mgmt))).json()["data"]
    assert {k["kind"] for k in listed} == {"model", "management"}
    assert len(listed) == 3  # the account's first key, the management key, the new one
    patched = await api.patch(
        f"/api/keys/{key_id}", json={"limits": {"requests_per_minute": 5}}, headers=auth(mgmt)
    )
    assert patched.status_code == 200 and patched.json()["limits"]["requests_per_minute"] == 5
    refused = await api.post(
        "/v1/images/generations", json={"prompt": "p", "model": "gpt-image-2"}, headers=auth(secret)
    )
    assert refused.status_code == 403  # the allowlist set through the API
    balance = await api.get("/api/balance", headers=auth(mgmt))
    assert balance.json() == {"object": "balance", "balance": 500, "reserved": 0}
    deleted = await api.delete(f"/api/keys/{key_id}", headers=auth(mgmt))
    assert deleted.status_code == 200 and deleted.json()["status"] == "revoked"


async def test_a_model_key_cannot_manage(web):
    _, model_key = await web.account()
    for method, path in (("GET", "/api/keys"), ("GET", "/api/balance"), ("POST", "/api/keys")):
        response = await web.client.request(method, path, headers=auth(model_key), json={})
        assert response.status_code == 401, path
        assert error_of(response)["code"] == "invalid_api_key"


async def test_a_bad_key_never_falls_back_to_the_session(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    token = await browser.token("/settings")
    for header in ("Bearer rk_mgmt_nope", "Basic abc"):
        response = await browser.client.post(
            "/api/keys",
            json={"name": "x"},
            headers={"authorization": header, "x-csrf-token": token},
        )
        assert response.status_code == 401
    assert (await browser.client.get("/api/keys")).json()["data"] == []


async def test_keys_of_another_account_are_not_found(web):
    one, _ = await web.account()
    other, _ = await web.account()
    other_key = (await keys_service(web.rt).create(other, name="theirs")).view.id
    mgmt = await management_key(web, one)
    for method in ("GET", "PATCH", "DELETE"):
        response = await web.client.request(
            method, f"/api/keys/{other_key}", headers=auth(mgmt), json={"name": "mine"}
        )
        assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert (await keys_service(web.rt).get(other, other_key)).name == "theirs"


async def test_a_disabled_account_cannot_manage(web):
    account, _ = await web.account()
    mgmt = await management_key(web, account)
    async with web.rt.db.write() as session:
        await session.execute(update(Account).where(Account.id == account).values(disabled_at=1.0))
    response = await web.client.get("/api/keys", headers=auth(mgmt))
    assert response.status_code == 403 and error_of(response)["code"] == "account_disabled"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"name": "x", "limits": {"spend_limit": "100"}}, "invalid_type", "limits.spend_limit"),
        ({"name": "x", "limits": {"spend_limit": True}}, "invalid_type", "limits.spend_limit"),
        ({"name": "x", "limits": {"spend_limit": 0}}, "invalid_limit", "spend_limit"),
        ({"name": "x", "limits": {"spend_period": "hourly"}}, "invalid_value", None),
        ({"name": "x", "limits": {"models": ["nope"]}}, "invalid_limit", "models"),
        ({"name": "x", "limits": {"expires_at": 1}}, "invalid_limit", "expires_at"),
        # The year ~3x10^11: a typo or a stand-in for "never" (which is null).
        ({"name": "x", "limits": {"expires_at": 2**63 - 1}}, "invalid_limit", "expires_at"),
        ({"name": "x", "limits": {"quota": 5}}, "unknown_parameter", "limits.quota"),
        ({"name": "x", "secret": "rk_live_abc"}, "unknown_parameter", "secret"),
        ({"name": "x" * 101}, "string_above_max_length", "name"),
        ([1, 2], "invalid_type", None),
    ],
)
async def test_bodies_are_checked(web, body, code, param):
    account, _ = await web.account()
    mgmt = await management_key(web, account)
    response = await web.client.post("/api/keys", json=body, headers=auth(mgmt))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param
    assert "rk_live_abc" not in response.text


async def test_a_body_that_is_not_json_is_refused(web):
    account, _ = await web.account()
    mgmt = await management_key(web, account)
    response = await web.client.post(
        "/api/keys",
        content=b"{nope",
        headers={**auth(mgmt), "content-type": "application/json"},
    )
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_json"


async def test_an_expiry_more_than_100_years_ahead_is_refused_and_one_within_is_kept(web):
    account, _ = await web.account()
    mgmt = await management_key(web, account)
    year = 365.25 * 86_400
    far = {"name": "x", "limits": {"expires_at": int(web.rt.now() + 101 * year)}}
    refused = await web.client.post("/api/keys", json=far, headers=auth(mgmt))
    assert refused.status_code == 400, refused.text
    error = error_of(refused)
    assert error["code"] == "invalid_limit" and error["param"] == "expires_at"
    assert "within 100 years" in error["message"] and "never expires" in error["message"]
    near = {"name": "x", "limits": {"expires_at": int(web.rt.now() + 99 * year)}}
    kept = await web.client.post("/api/keys", json=near, headers=auth(mgmt))
    assert kept.status_code == 201, kept.text
    assert kept.json()["limits"]["expires_at"] == near["limits"]["expires_at"]


@pytest.mark.parametrize(
    ("content_type", "served"),
    [
        ("application/xml", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
    ],
)
async def test_a_body_is_read_as_json_only_when_declared_json(web, content_type, served):
    account, _ = await web.account()
    mgmt = await management_key(web, account)
    response = await web.client.post(
        "/api/keys",
        content=b'{"name": "x"}',
        headers={**auth(mgmt), "content-type": content_type},
    )
    if served:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "unsupported_content_type"
    assert "Content-Type: application/json" in error["message"]
    assert content_type not in error["message"]  # what the client sent is never echoed


@pytest.mark.parametrize("change", ["deleted", "disabled"])
async def test_a_management_key_stops_at_once_on_another_process(make_gateway, change):
    """Two gateways on one database: the second has the management key in its key cache when
    the first deletes (or an operator disables) the account. The second's next management call,
    within the cache's seconds, is refused: no key made on a closed account, nothing read."""
    first = await make_gateway()
    second = await make_gateway(database_url=first.rt.settings.resolved_database_url)
    email = new_email()
    account, _ = await first.account(email=email)
    mgmt = await management_key(first, account)
    listed = await second.client.get("/api/keys", headers=auth(mgmt))
    assert listed.status_code == 200  # the principal is in the second's cache now
    if change == "deleted":
        data = PersonalData.for_runtime(first.rt)
        user_id = await data.user_id_for(email)
        assert user_id is not None and await data.delete(user_id) is not None
        code, status = "invalid_api_key", 401
    else:
        async with first.rt.db.write() as session:
            assert await set_disabled(session, account, first.rt.now())
        code, status = "account_disabled", 403
    for method, path in (("POST", "/api/keys"), ("GET", "/api/keys"), ("GET", "/api/balance")):
        response = await second.client.request(method, path, headers=auth(mgmt), json={"name": "x"})
        assert response.status_code == status, (path, response.text)
        assert error_of(response)["code"] == code
    async with second.rt.db.read() as session:
        made = await session.execute(select(ApiKey).where(ApiKey.name == "x"))
        assert made.first() is None


async def test_no_key_is_made_on_an_account_closed_in_the_meantime(db_web):
    """The account closed between the management key's check and the create (its deletion's
    first step, `deleted_at`, committed): the create's own transaction refuses it."""
    account, _ = await db_web.account()
    keys = keys_service(db_web.rt)
    async with db_web.rt.db.write() as session:
        await mark_deleted(session, account, db_web.rt.now())
    with pytest.raises(InvalidApiKey):
        await keys.create(account, name="late", kind="management")
    async with db_web.rt.db.read() as session:
        made = await session.execute(select(ApiKey).where(ApiKey.name == "late"))
        assert made.first() is None


@pytest.mark.parametrize("rotate", [False, True])
async def test_no_webhook_secret_is_made_on_an_account_closed_in_the_meantime(db_web, rotate):
    """The account closed between the caller's check and the call (its deletion's first step,
    `deleted_at`, committed): the secret's own transaction refuses it, made or rotated."""
    account, _ = await db_web.account()
    keys = keys_service(db_web.rt)
    async with db_web.rt.db.read() as session:
        found = await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        key_id = found.scalar_one()
    if rotate:
        await keys.webhook_secret(account, key_id)  # made while the account was open
    async with db_web.rt.db.read() as session:
        salt = (await session.get(ApiKey, key_id)).webhook_salt
    async with db_web.rt.db.write() as session:
        await mark_deleted(session, account, db_web.rt.now())
    with pytest.raises(InvalidApiKey):
        await keys.webhook_secret(account, key_id, rotate=rotate)
    async with db_web.rt.db.read() as session:
        row = await session.get(ApiKey, key_id)
    assert row.webhook_salt == salt and row.webhook_previous_salt is None
    assert (salt is None) is not rotate  # none made; the one there not rotated
