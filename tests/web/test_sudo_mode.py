"""Sudo mode (`reapi_server.web.sudo`): a session whose sign-in is more than ten minutes old
mints no key, reads no webhook signing secret and downloads no data until its person types
their password on the confirm-access page; that counts for ten minutes. Before, a stolen
session cookie alone could make a management key (and with it keep the account)."""

from __future__ import annotations

from sqlalchemy import select
from tests.server.helpers import auth
from tests.web.helpers import PASSWORD, Browser
from tests.web.test_management_api import error_of, management_key, verified
from tests.web.two_factor_helpers import code_at, turn_on

from reapi_server.api_keys.service import keys_service
from reapi_server.models import WebSession

STALE = 11 * 60  # past the ten minutes a sign-in or a confirmation counts as recent
MANAGEMENT = "/dashboard/keys/management"
CONFIRM = "/settings/confirm-access"


async def _kinds(gateway, account: str) -> list[str]:
    return [view.kind for view in await keys_service(gateway.rt).list(account)]


async def _mint(browser: Browser, **extra: str):
    return await browser.submit("/dashboard/keys", MANAGEMENT, {"name": "ops", **extra})


async def test_a_stale_session_mints_a_management_key_only_after_the_password(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    clock.advance(STALE)

    asked = await _mint(browser)
    assert asked.status_code == 403
    assert "Confirm it is you" in asked.text and "make a management key" in asked.text
    assert f'action="{MANAGEMENT}"' in asked.text  # posts the same form back
    assert '<input type="hidden" name="name" value="ops">' in asked.text
    assert 'name="current_password"' in asked.text and "rk_mgmt_" not in asked.text
    assert await _kinds(web, account) == []

    wrong = await _mint(browser, confirm_access="1", current_password="not my password")
    assert wrong.status_code == 401 and "Your current password is not right." in wrong.text
    assert '<input type="hidden" name="name" value="ops">' in wrong.text  # the form is kept
    assert await _kinds(web, account) == []

    done = await _mint(browser, confirm_access="1", current_password=PASSWORD)
    assert done.status_code == 201 and "rk_mgmt_" in done.text
    assert await _kinds(web, account) == ["management"]
    async with web.rt.db.read() as session:
        [confirmed] = (await session.execute(select(WebSession.confirmed_at))).scalars()
    assert confirmed == clock.now  # on the session, not on the form

    clock.advance(9 * 60)  # still sudo: no password asked
    again = await _mint(browser)
    assert again.status_code == 201
    assert await _kinds(web, account) == ["management", "management"]

    clock.advance(2 * 60)  # the confirmation is now eleven minutes old
    expired = await _mint(browser)
    assert expired.status_code == 403 and 'name="current_password"' in expired.text
    assert len(await _kinds(web, account)) == 2


async def test_a_fresh_sign_in_counts_as_recent(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    assert (await _mint(browser)).status_code == 201
    model = await browser.submit("/dashboard/keys", "/dashboard/keys", {"name": "app"})
    assert model.status_code == 201
    assert sorted(await _kinds(web, account)) == ["management", "model"]


async def test_a_stale_session_needs_the_password_for_a_model_key_too(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    clock.advance(STALE)
    form = {"name": "app", "model_access": "only", "models": "gpt-image-2"}
    asked = await browser.submit("/dashboard/keys", "/dashboard/keys", form)
    assert asked.status_code == 403 and "make an API key" in asked.text
    assert '<input type="hidden" name="models" value="gpt-image-2">' in asked.text
    done = await browser.submit(
        "/dashboard/keys",
        "/dashboard/keys",
        {**form, "confirm_access": "1", "current_password": PASSWORD},
    )
    assert done.status_code == 201
    [view] = await keys_service(web.rt).list(account)
    assert view.limits.models == ("gpt-image-2",)  # the replayed form, whole


async def test_wrong_passwords_are_throttled_as_sign_ins_are(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    clock.advance(STALE)
    statuses = [
        (await _mint(browser, confirm_access="1", current_password=f"guess {n}")).status_code
        for n in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    right = await _mint(browser, confirm_access="1", current_password=PASSWORD)
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
    assert "Too many attempts" in right.text
    assert await _kinds(web, account) == []


async def test_the_webhook_secret_and_the_data_download_ask_too(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    created = await keys_service(web.rt).create(account, name="app")
    page = f"/dashboard/keys/{created.view.id}"
    clock.advance(STALE)

    secret = await browser.submit(page, f"{page}/webhook-secret", {})
    assert secret.status_code == 403 and "see its webhook signing secret" in secret.text
    assert "whsec_" not in secret.text

    download = await browser.get("/settings/data/export.json")
    assert download.status_code == 303
    assert download.headers["location"] == f"{CONFIRM}?next=%2Fsettings%2Fdata%2Fexport.json"
    assert (await browser.get("/settings/data/usage.csv")).status_code == 303
    form = await browser.get(download.headers["location"])
    assert form.status_code == 200 and f'action="{CONFIRM}"' in form.text
    assert 'name="next" value="/settings/data/export.json"' in form.text
    confirmed = await browser.submit(
        download.headers["location"],
        CONFIRM,
        {"confirm_access": "1", "next": "/settings/data/export.json", "current_password": PASSWORD},
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/settings/data/export.json"
    exported = await browser.get("/settings/data/export.json")
    assert exported.status_code == 200
    [row] = exported.json()["sessions"]
    assert row["confirmed_at"] is not None  # what the session keeps is in the export
    assert (await browser.submit(page, f"{page}/webhook-secret", {})).status_code == 200
    # Confirmed already: the page itself goes straight on.
    assert (await browser.get(f"{CONFIRM}?next=/dashboard")).headers["location"] == "/dashboard"


async def test_the_confirm_page_goes_only_to_local_pages(web, browsers, clock):
    browser = browsers(web)
    await verified(web, browser)
    clock.advance(STALE)
    page = await browser.get(f"{CONFIRM}?next=https://evil.example/")
    assert 'name="next" value="/settings"' in page.text and "evil.example" not in page.text
    signed_out = browsers(web)
    assert (await signed_out.get(CONFIRM)).headers["location"].startswith("/login")


async def test_the_management_api_asks_a_stale_session_not_a_management_key(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    token = await browser.token("/dashboard/keys")
    headers = {"x-csrf-token": token}
    key = await management_key(web, account)
    clock.advance(STALE)

    refused = await browser.client.post("/api/keys", json={"name": "ci"}, headers=headers)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "step_up_required"
    assert CONFIRM in error_of(refused)["message"]
    created = await keys_service(web.rt).create(account, name="app")
    secret = await browser.get(f"/api/keys/{created.view.id}/webhook_secret")
    assert secret.status_code == 403 and error_of(secret)["code"] == "step_up_required"
    assert (await browser.get("/api/keys")).status_code == 200  # reading is not minting

    with_key = await browsers(web).client.post("/api/keys", json={"name": "ci"}, headers=auth(key))
    assert with_key.status_code == 201  # a management key proves itself

    await browser.submit(
        CONFIRM, CONFIRM, {"confirm_access": "1", "next": "/", "current_password": PASSWORD}
    )
    allowed = await browser.client.post("/api/keys", json={"name": "ci"}, headers=headers)
    assert allowed.status_code == 201


async def test_with_two_factor_on_the_confirmation_asks_for_a_code_too(web, browsers, clock):
    browser = browsers(web)
    account = await verified(web, browser)
    secret, _ = await turn_on(browser, clock.now)
    clock.advance(STALE)
    asked = await _mint(browser)
    assert asked.status_code == 403 and 'name="code"' in asked.text
    password_only = await _mint(browser, confirm_access="1", current_password=PASSWORD)
    assert password_only.status_code == 400 and 'id="f-code-error"' in password_only.text
    assert await _kinds(web, account) == []
    done = await _mint(
        browser,
        confirm_access="1",
        current_password=PASSWORD,
        code=code_at(secret, clock.now),
    )
    assert done.status_code == 201 and await _kinds(web, account) == ["management"]
