"""The keys page: create with a name and limits (the secret shown once, on the answer to the
form), the list with each key's spend against its limit from the counter /v1 checks, edit,
revoke, management keys apart; only verified users create."""

from __future__ import annotations

import re

from sqlalchemy import select
from tests.server.helpers import auth
from tests.web.helpers import new_email
from tests.web.test_management_api import grant, verified

from reapi_server.api_keys.last_used import flush_last_used
from reapi_server.models import ApiKey

PRICE = 40
SECRET = re.compile(r"rk_(?:live|mgmt)_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}")


def key_item(html: str, key_id: str) -> str:
    """The list item of one key (its text, tags stripped, spaces collapsed)."""
    match = re.search(rf'<li class="key-item[^"]*" id="key-{key_id}">(.*?)</li>', html, re.S)
    assert match, key_id
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


async def create(browser, **fields: str):
    data = {"name": "production", **fields}
    return await browser.submit("/dashboard/keys", "/dashboard/keys", data)


async def test_create_a_key_with_limits_and_see_its_secret_once(db_web, browsers):
    gateway = db_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    await grant(gateway, account, 10_000)

    page = await browser.get("/dashboard/keys")
    assert page.status_code == 200 and "No API keys yet" in page.text
    created = await create(
        browser,
        spend_limit="100",
        spend_period="monthly",
        model_access="only",
        models="gpt-image-2",
        expires_at="2030-01-01",
        requests_per_minute="30",
    )
    assert created.status_code == 201, created.text
    secrets = SECRET.findall(created.text)
    assert len(secrets) == 1 and secrets[0].startswith("rk_live_")
    secret = secrets[0]
    assert "only time it is shown" in created.text
    assert 'data-copy="new-key-secret"' in created.text
    assert '<script src="/static/copy.js' in created.text

    async with gateway.rt.db.read() as session:
        key_id = await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        key_id = key_id.scalar_one()
    item = key_item(created.text, key_id)
    assert f"rk_live_...{secret[-4:]}" in item and "production" in item and "Active" in item
    assert "0 of 100 credits spent this month" in item
    assert "Resets" in item and "never used" in item
    assert "gpt-image-2" in item and "Expires 01 Jan 2030, 00:00 UTC" in item
    assert "Requests per minute 30" in item

    again = await browser.get("/dashboard/keys")
    assert SECRET.search(again.text) is None  # never shown again

    # The page shows the counter /v1 checks: one request of 40, then the limit refuses.
    v1 = gateway.client
    ok = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert ok.status_code == 200
    await flush_last_used(gateway.rt.db, gateway.rt.auth.usage)
    item = key_item((await browser.get("/dashboard/keys")).text, key_id)
    assert "40 of 100 credits spent this month" in item and "last used" in item
    assert (
        '<meter class="spend-meter" min="0" max="100" value="40"'
        in (await browser.get("/dashboard/keys")).text
    )
    await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    refused = await v1.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(secret))
    assert refused.status_code == 402
    item = key_item((await browser.get("/dashboard/keys")).text, key_id)
    assert "80 of 100 credits spent this month" in item


async def test_only_verified_users_create_keys(web, browsers):
    browser = browsers(web)
    await browser.sign_up(new_email())
    page = await browser.get("/dashboard/keys")
    assert "Verify your email address to create API keys" in page.text
    assert 'action="/dashboard/keys"' not in page.text
    refused = await create(browser)
    assert refused.status_code == 403 and "Verify your email address" in refused.text
    assert SECRET.search(refused.text) is None


async def test_signed_out_visitors_are_sent_to_sign_in(web, browsers):
    response = await browsers(web).get("/dashboard/keys")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/dashboard/keys"


async def test_form_errors_are_shown_beside_their_fields(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    response = await create(
        browser,
        name="",
        spend_limit="lots",
        expires_at="2001-01-01",
        model_access="only",
    )
    assert response.status_code == 400
    assert SECRET.search(response.text) is None
    # Each readable field is checked once the form parses; the first refusal names its field.
    assert 'id="f-name-error"' in response.text
    refused = await create(browser, spend_limit="lots", model_access="only")
    assert refused.status_code == 400
    assert "The spend limit must be a whole number." in refused.text
    assert 'id="f-spend_limit" name="spend_limit"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    no_model = await create(browser, model_access="only")
    assert no_model.status_code == 400 and "Choose at least one model" in no_model.text
    past = await create(browser, expires_at="2001-01-01")
    assert past.status_code == 400 and "must be in the future" in past.text, re.findall(
        r"error-list.{0,600}", past.text, re.S
    )
    assert 'value="2001-01-01"' in past.text  # what was typed comes back


async def test_edit_limits_and_revoke(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    created = await create(browser, spend_limit="500", expires_at="2031-05-01")
    secret = SECRET.search(created.text).group(0)
    key_id = re.search(r'id="key-(key_[0-9a-f]+)"', created.text).group(1)

    form = await browser.get(f"/dashboard/keys/{key_id}")
    assert form.status_code == 200
    assert 'value="500"' in form.text and 'value="2031-05-01"' in form.text
    saved = await browser.submit(
        f"/dashboard/keys/{key_id}",
        f"/dashboard/keys/{key_id}",
        {
            "name": "renamed",
            "spend_limit": "",
            "spend_period": "daily",
            "expires_at": "2031-05-01",
            "model_access": "all",
            "max_concurrent_videos": "3",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/dashboard/keys?done=key_updated#key-{key_id}"
    page = await browser.get(saved.headers["location"])
    assert "limits are saved" in page.text
    item = key_item(page.text, key_id)
    assert "renamed" in item and "(no limit)" in item and "spent today" in item
    assert "Concurrent videos 3" in item and "Expires 01 May 2031" in item

    confirm = await browser.get(f"/dashboard/keys/{key_id}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    revoked = await browser.submit(
        f"/dashboard/keys/{key_id}/revoke", f"/dashboard/keys/{key_id}/revoke", {}
    )
    assert revoked.status_code == 303
    page = await browser.get(revoked.headers["location"])
    assert "The key is revoked." in page.text and "Revoked" in key_item(page.text, key_id)
    gone = await web.client.get("/v1/models", headers=auth(secret))
    assert gone.status_code == 401


async def test_management_keys_are_made_apart(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    made = await browser.submit(
        "/dashboard/keys", "/dashboard/keys/management", {"name": "terraform"}
    )
    assert made.status_code == 201
    secret = SECRET.search(made.text).group(0)
    assert secret.startswith("rk_mgmt_") and "Your new management key" in made.text
    section = made.text.split('id="management"', 1)[1]
    assert f"rk_mgmt_...{secret[-4:]}" in section and "terraform" in section
    assert (await web.client.get("/api/keys", headers=auth(secret))).status_code == 200
    assert (await web.client.get("/v1/models", headers=auth(secret))).status_code == 401
    nameless = await browser.submit("/dashboard/keys", "/dashboard/keys/management", {"name": ""})
    assert nameless.status_code == 400 and 'id="f-management-name-error"' in nameless.text


async def test_another_accounts_key_is_not_found(web, browsers):
    owner, intruder = browsers(web), browsers(web)
    await verified(web, owner)
    created = await create(owner)
    key_id = re.search(r'id="key-(key_[0-9a-f]+)"', created.text).group(1)
    await verified(web, intruder)
    assert (await intruder.get(f"/dashboard/keys/{key_id}")).status_code == 404
    assert (await intruder.get(f"/dashboard/keys/{key_id}/revoke")).status_code == 404
    token = await intruder.token("/dashboard/keys")
    refused = await intruder.client.post(
        f"/dashboard/keys/{key_id}/revoke", data={"csrf_token": token}
    )
    assert refused.status_code == 404
    page = await owner.get("/dashboard/keys")
    assert "Active" in key_item(page.text, key_id)


async def test_the_copy_script_is_served(web):
    script = await web.client.get("/static/copy.js")
    assert script.status_code == 200 and "data-copy" in script.text


async def test_times_follow_the_persons_time_zone(web, browsers):
    browser = browsers(web)
    account = await verified(web, browser)
    await grant(web, account, 1000)
    await browser.submit(
        "/dashboard/usage", "/dashboard/usage/time-zone", {"time_zone": "Asia/Tokyo"}
    )
    created = await create(browser, spend_limit="100", expires_at="2030-01-01")
    async with web.rt.db.read() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        ).scalar_one()
    item = key_item(created.text, key_id)
    # The test clock is 08:00 UTC on 15 Jan 2027: 17:00 in Tokyo. Periods and expiries start
    # at 00:00 UTC, which is 09:00 there.
    assert "created 15 Jan 2027, 17:00 JST" in item
    assert "Resets 01 Feb 2027, 09:00 JST" in item
    assert "Expires 01 Jan 2030, 09:00 JST" in item
    edit = await browser.get(f"/dashboard/keys/{key_id}")
    assert "15 Jan 2027, 17:00 JST" in edit.text
