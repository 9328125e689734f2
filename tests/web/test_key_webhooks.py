"""A key's webhook settings with its other settings: the default webhook URL (public addresses
only, checked when it is set) and the secret that signs its webhooks, through the management API
and the keys page. The receiver's host is `tests.media_host` (names resolve to a public-looking
address), so the default, secure address policy applies unchanged."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from tests.media_host import MediaHost
from tests.web.helpers import PASSWORD
from tests.web.test_keys_page import create as create_on_page
from tests.web.test_keys_page import key_item
from tests.web.test_management_api import error_of, management_key, verified

from reapi import webhooks
from reapi_server.models import ApiKey
from reapi_server.webhooks.signing import KeySalts, signature_header

WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")


@pytest.fixture
async def hooked_web(db_web, media_host: MediaHost):
    db_web.rt.webhook_fetcher = media_host.async_fetcher(db_web.rt.settings.webhook_url_policy)
    return db_web


async def stored(gateway, key_id: str) -> ApiKey:
    async with gateway.rt.db.read() as session:
        return (await session.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one()


# -- the management API ----------------------------------------------------------------------------
async def test_the_api_sets_checks_and_clears_a_keys_default_webhook_url(
    hooked_web, browsers, media_host
):
    gateway = hooked_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    ops = {"authorization": f"Bearer {await management_key(gateway, account)}"}
    client = browser.client
    url = media_host.url("/hook?token=abc")

    created = await client.post("/api/keys", json={"name": "ci", "webhook_url": url}, headers=ops)
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["webhook"] == {"url": url, "disabled": False}
    assert (await stored(gateway, key["id"])).webhook_url == url

    for private in ("http://127.0.0.1/hook", "http://169.254.169.254/", "http://[::1]/"):
        refused = await client.patch(
            f"/api/keys/{key['id']}", json={"webhook_url": private}, headers=ops
        )
        assert refused.status_code == 400
        error = error_of(refused)
        assert (error["param"], error["code"]) == ("webhook_url", "url_not_allowed")
        assert "127.0.0.1" not in error["message"] and "169.254" not in error["message"]
    not_http = await client.patch(
        f"/api/keys/{key['id']}", json={"webhook_url": "ftp://media.example.com/"}, headers=ops
    )
    assert error_of(not_http)["code"] == "invalid_url"
    assert (await stored(gateway, key["id"])).webhook_url == url  # unchanged by refusals

    renamed = await client.patch(f"/api/keys/{key['id']}", json={"name": "ci-2"}, headers=ops)
    assert renamed.json()["webhook"]["url"] == url  # a PATCH without it leaves it
    cleared = await client.patch(f"/api/keys/{key['id']}", json={"webhook_url": None}, headers=ops)
    assert cleared.status_code == 200 and cleared.json()["webhook"]["url"] is None

    refused = await client.post(
        "/api/keys", json={"name": "x", "webhook_url": "http://10.0.0.1/"}, headers=ops
    )
    assert refused.status_code == 400 and error_of(refused)["param"] == "webhook_url"
    listed = (await client.get("/api/keys", headers=ops)).json()["data"]
    assert [k["name"] for k in listed if k["kind"] == "model"] == ["ci-2"]  # nothing made


async def test_a_management_key_takes_no_webhook(hooked_web, browsers, media_host):
    gateway = hooked_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    ops_key = await management_key(gateway, account)
    ops = {"authorization": f"Bearer {ops_key}"}
    [me] = (await browser.client.get("/api/keys", headers=ops)).json()["data"]
    refused = await browser.client.patch(
        f"/api/keys/{me['id']}", json={"webhook_url": media_host.url("/hook")}, headers=ops
    )
    assert refused.status_code == 400 and error_of(refused)["param"] == "webhook_url"
    secret = await browser.client.get(f"/api/keys/{me['id']}/webhook_secret", headers=ops)
    assert secret.status_code == 400


async def test_the_api_reads_and_rotates_a_keys_signing_secret(hooked_web, browsers):
    gateway = hooked_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    ops = {"authorization": f"Bearer {await management_key(gateway, account)}"}
    client = browser.client
    key = (await client.post("/api/keys", json={"name": "ci"}, headers=ops)).json()
    path = f"/api/keys/{key['id']}/webhook_secret"

    first = await client.get(path, headers=ops)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "webhook_secret" and body["key_id"] == key["id"]
    assert WHSEC.fullmatch(body["secret"])
    assert (await client.get(path, headers=ops)).json()["secret"] == body["secret"]

    rotated = await client.post(f"{path}/rotate", headers=ops)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != body["secret"] and (await client.get(path, headers=ops)).json()["secret"] == new
    # What the gateway signs with now: the new secret, and the old one beside it.
    row = await stored(gateway, key["id"])
    salts = KeySalts(row.id, row.webhook_salt, row.webhook_previous_salt, row.webhook_rotated_at)
    signing = salts.secrets(gateway.rt.fingerprint_secret, gateway.rt.now(), 3600)
    header = signature_header(signing, "msg_1", int(gateway.rt.now()), b"{}")
    message = {"webhook-id": "msg_1", "webhook-timestamp": str(int(gateway.rt.now()))}
    for secret in (body["secret"], new):
        signed = {**message, "webhook-signature": header}
        assert webhooks.verify(b"{}", signed, secret, now=gateway.rt.now()) == {}

    other = browsers(gateway)
    other_account = await verified(gateway, other)
    other_ops = {"authorization": f"Bearer {await management_key(gateway, other_account)}"}
    assert (await client.get(path, headers=other_ops)).status_code == 404
    assert (await client.get("/api/keys/key_nope/webhook_secret", headers=ops)).status_code == 404

    await client.delete(f"/api/keys/{key['id']}", headers=ops)
    assert (await client.get(path, headers=ops)).json()["secret"] == new  # still readable
    refused = await client.post(f"{path}/rotate", headers=ops)
    assert refused.status_code == 400 and error_of(refused)["code"] == "key_revoked"


async def test_the_browser_needs_its_csrf_token_to_read_a_secret_by_post(hooked_web, browsers):
    gateway = hooked_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    token = await browser.token("/settings")
    created = await browser.client.post(
        "/api/keys", json={"name": "ci"}, headers={"x-csrf-token": token}
    )
    key_id = created.json()["id"]
    refused = await browser.client.post(f"/api/keys/{key_id}/webhook_secret/rotate")
    assert refused.status_code == 403
    read = await browser.client.get(f"/api/keys/{key_id}/webhook_secret")
    assert read.status_code == 200 and WHSEC.fullmatch(read.json()["secret"])


# -- the keys page ---------------------------------------------------------------------------------
def key_id_in(html: str) -> str:
    return re.search(r'id="key-(key_[0-9a-f]+)"', html).group(1)


async def test_the_page_sets_a_default_webhook_url_on_create_and_edit(
    hooked_web, browsers, media_host
):
    gateway = hooked_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    url = media_host.url("/hook")
    created = await create_on_page(browser, webhook_url=url)
    assert created.status_code == 201, created.text
    key_id = key_id_in(created.text)
    assert (await stored(gateway, key_id)).webhook_url == url
    assert f"Webhook {url}" in key_item(created.text, key_id)

    form = await browser.get(f"/dashboard/keys/{key_id}")
    assert f'value="{url}"' in form.text
    edit = f"/dashboard/keys/{key_id}"
    refused = await browser.submit(
        edit, edit, {"name": "p", "model_access": "all", "webhook_url": "http://192.168.0.7/"}
    )
    assert refused.status_code == 400
    assert 'id="f-webhook_url-error"' in refused.text and "public addresses" in refused.text
    assert 'value="http://192.168.0.7/"' in refused.text  # what was typed comes back
    assert (await stored(gateway, key_id)).webhook_url == url

    other = media_host.url("/other")
    saved = await browser.submit(
        edit, edit, {"name": "p", "model_access": "all", "webhook_url": other}
    )
    assert saved.status_code == 303
    assert (await stored(gateway, key_id)).webhook_url == other
    cleared = await browser.submit(
        edit, edit, {"name": "p", "model_access": "all", "webhook_url": ""}
    )
    assert cleared.status_code == 303
    assert (await stored(gateway, key_id)).webhook_url is None
    page = await browser.get(cleared.headers["location"])
    assert "Webhook None" in key_item(page.text, key_id)

    refused = await create_on_page(browser, name="x", webhook_url="http://127.0.0.1:9/")
    assert refused.status_code == 400 and 'id="f-webhook_url-error"' in refused.text


async def test_a_default_stopped_by_410_is_said_and_turned_on_again_on_purpose(
    hooked_web, browsers, media_host
):
    gateway = hooked_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    url = media_host.url("/hook")
    key_id = key_id_in((await create_on_page(browser, webhook_url=url)).text)
    async with gateway.rt.db.write() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(webhook_disabled_at=1.0)
        )
    page = await browser.get("/dashboard/keys")
    assert "410 Gone" in key_item(page.text, key_id)
    edit = f"/dashboard/keys/{key_id}"
    form = await browser.get(edit)
    assert "410 Gone" in form.text and 'name="webhook_enable"' in form.text
    # Saving other settings leaves it stopped...
    fields = {"name": "renamed", "model_access": "all", "webhook_url": url}
    assert (await browser.submit(edit, edit, fields)).status_code == 303
    assert (await stored(gateway, key_id)).webhook_disabled_at == 1.0
    # ...until the owner asks for it again.
    enabled = await browser.submit(edit, edit, {**fields, "webhook_enable": "yes"})
    assert enabled.status_code == 303
    row = await stored(gateway, key_id)
    assert (row.webhook_url, row.webhook_disabled_at) == (url, None)


async def test_the_page_shows_and_rotates_the_signing_secret_on_request(hooked_web, browsers):
    gateway = hooked_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    key_id = key_id_in((await create_on_page(browser)).text)
    edit = f"/dashboard/keys/{key_id}"
    form = await browser.get(edit)
    assert not WHSEC.search(form.text)  # never on a page that a GET answers
    assert f'action="{edit}/webhook-secret"' in form.text

    shown = await browser.submit(edit, f"{edit}/webhook-secret", {})
    assert shown.status_code == 200
    [secret] = set(WHSEC.findall(shown.text))
    assert shown.headers["cache-control"] == "no-store"
    again = await browser.submit(edit, f"{edit}/webhook-secret", {})
    assert WHSEC.findall(again.text)[0] == secret
    no_token = await browser.client.post(f"{edit}/webhook-secret", data={})
    assert no_token.status_code == 403 and not WHSEC.search(no_token.text)

    rotated = await browser.submit(edit, f"{edit}/webhook-secret/rotate", {})
    assert rotated.status_code == 200
    [new] = set(WHSEC.findall(rotated.text))
    assert new != secret and "keeps signing" in rotated.text


async def test_a_stale_session_sends_a_keys_webhooks_elsewhere_only_after_the_password(
    hooked_web, browsers, media_host, clock
):
    """Where a key's job results go is as good as a credential: a session whose sign-in is
    over ten minutes old changes it only once its person confirms (sudo mode), on the page and
    through the management API. Other changes, and taking the URL away, need nothing more."""
    gateway = hooked_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    url = media_host.url("/hook")
    key_id = key_id_in((await create_on_page(browser, webhook_url=url)).text)
    edit = f"/dashboard/keys/{key_id}"
    clock.advance(11 * 60)

    elsewhere = {"name": "p", "model_access": "all", "webhook_url": media_host.url("/attacker")}
    asked = await browser.submit(edit, edit, elsewhere)
    assert asked.status_code == 403 and "send the key&#39;s webhooks to a new address" in asked.text
    assert (await stored(gateway, key_id)).webhook_url == url
    same = {"name": "q", "model_access": "all", "webhook_url": url}
    renamed = await browser.submit(edit, edit, same)
    assert renamed.status_code == 303  # the same URL: nothing to confirm

    token = await browser.token("/dashboard/keys")
    api = browser.client
    refused = await api.patch(
        f"/api/keys/{key_id}",
        json={"webhook_url": media_host.url("/attacker")},
        headers={"x-csrf-token": token},
    )
    assert refused.status_code == 403 and error_of(refused)["code"] == "step_up_required"
    assert (await stored(gateway, key_id)).webhook_url == url
    cleared = await api.patch(
        f"/api/keys/{key_id}", json={"webhook_url": None}, headers={"x-csrf-token": token}
    )
    assert cleared.status_code == 200 and (await stored(gateway, key_id)).webhook_url is None

    confirmed = {**elsewhere, "confirm_access": "1", "current_password": PASSWORD}
    assert (await browser.submit(edit, edit, confirmed)).status_code == 303
    assert (await stored(gateway, key_id)).webhook_url == media_host.url("/attacker")
