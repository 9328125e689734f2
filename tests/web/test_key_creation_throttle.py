"""Keys an account makes in an hour are bounded (`api_keys.throttle`), through the management
API and the keys page alike; a key refused for another reason is not counted, and the operator's
CLI is not counted at all."""

from __future__ import annotations

from tests.server.helpers import auth
from tests.web.test_keys_page import create
from tests.web.test_management_api import error_of, management_key, verified

from reapi_server.api_keys.service import issue_key, keys_service
from reapi_server.api_keys.throttle import KEYS_PER_HOUR

HOUR = 3600


async def test_the_management_api_answers_429_once_the_hours_keys_are_made(db_web, clock):
    gateway = db_web
    account, _ = await gateway.account(credits=0)
    mgmt = await management_key(gateway, account)  # the first key of the hour
    api = gateway.client
    # Refusals for another reason are not counted: the count is rolled back with the key.
    for _ in range(3):
        bad = await api.post(
            "/api/keys", json={"name": "x", "limits": {"spend_limit": -1}}, headers=auth(mgmt)
        )
        assert bad.status_code == 400, bad.text
    for n in range(KEYS_PER_HOUR - 1):
        made = await api.post("/api/keys", json={"name": f"ci-{n}"}, headers=auth(mgmt))
        assert made.status_code == 201, (n, made.text)
        await api.delete(f"/api/keys/{made.json()['id']}", headers=auth(mgmt))

    clock.advance(60)
    refused = await api.post("/api/keys", json={"name": "one more"}, headers=auth(mgmt))
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert str(KEYS_PER_HOUR) in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= HOUR - 60
    listed = (await api.get("/api/keys", headers=auth(mgmt))).json()["data"]
    assert len(listed) == 2 + KEYS_PER_HOUR - 1  # account's first key, mgmt, the hour's

    # The operator's own way (what `reapi-server keys create` calls) is not throttled.
    async with gateway.rt.db.write() as session:
        await issue_key(session, account, name="ops", now=gateway.rt.now())

    clock.advance(HOUR)
    again = await api.post("/api/keys", json={"name": "next hour"}, headers=auth(mgmt))
    assert again.status_code == 201, again.text


async def test_the_keys_page_shows_the_refusal_on_the_page(web, browsers):
    browser = browsers(web)
    account = await verified(web, browser)
    service = keys_service(web.rt)
    for n in range(KEYS_PER_HOUR):
        await service.create(account, name=f"k{n}")
    refused = await create(browser, name="one more")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert f"at most {KEYS_PER_HOUR} keys an hour" in refused.text
    assert 'value="one more"' in refused.text  # what was typed comes back
    management = await browser.submit(
        "/dashboard/keys", "/dashboard/keys/management", {"name": "terraform"}
    )
    assert management.status_code == 429
    assert f"at most {KEYS_PER_HOUR} keys an hour" in management.text
