"""Settings → Notifications: a person sets low-balance thresholds and, per key, a share of its
spend limit; a request crossing one then mails them (through the outbox, to the mail
directory). Refusals are shown beside their fields."""

from __future__ import annotations

import html
import re

from sqlalchemy import select
from tests.server.helpers import auth
from tests.web.helpers import mail_to
from tests.web.staff import account_id_of, signed_in
from tests.web.test_management_api import grant, verified

from reapi_server.api_keys.limits import KeyLimits
from reapi_server.api_keys.service import keys_service
from reapi_server.identity import repository as users
from reapi_server.models import BalanceAlert, KeySpendAlert

PRICE = 40  # gpt-image-2 in the test catalog


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def thresholds_of(gateway, account: str) -> dict[int, bool]:
    async with gateway.rt.db.read() as session:
        rows = await session.execute(
            select(BalanceAlert.threshold, BalanceAlert.armed).where(
                BalanceAlert.account_id == account
            )
        )
        return {int(t): bool(a) for t, a in rows.all()}


async def save(browser, thresholds: str):
    return await browser.submit(
        "/settings", "/settings/notifications/balance-alerts", {"thresholds": thresholds}
    )


async def test_thresholds_are_saved_shown_and_checked(db_web, browsers):
    gateway = db_web
    browser, email = await signed_in(gateway, browsers)
    account = await account_id_of(gateway, email)
    await grant(gateway, account, 500)
    page = await browser.get("/settings")
    assert 'id="balance-alerts"' in page.text and 'id="key-alerts"' in page.text
    assert "You have no API keys yet" in text_of(page.text)

    saved = await save(browser, "1,000; 200\n100, ")
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings?done=alerts_saved#balance-alerts"
    assert await thresholds_of(gateway, account) == {1000: False, 200: True, 100: True}
    shown = text_of((await browser.get("/settings?done=alerts_saved")).text)
    assert "Your low-balance alerts are saved." in shown
    assert 'value="1,000, 200, 100"' in (await browser.get("/settings")).text
    assert "1,000 credits Balance below" in shown and "200 credits Watching" in shown

    for typed, said in (
        ("lots", "Enter whole numbers of credits"),
        ("0", "Enter whole numbers of credits"),
        ("1000,200", "separated by a comma and a space"),
        ("1, 2, 3, 4, 5, 6", "at most 5"),
    ):
        refused = await save(browser, typed)
        assert refused.status_code == 400, typed
        assert said in text_of(refused.text), typed
        assert 'id="f-thresholds-error"' in refused.text
    assert await thresholds_of(gateway, account) == {1000: False, 200: True, 100: True}
    assert (await save(browser, "200")).status_code == 303  # 1,000 and 100 go; 200 stays
    assert await thresholds_of(gateway, account) == {200: True}
    assert (await save(browser, "")).status_code == 303
    assert await thresholds_of(gateway, account) == {}


async def test_key_shares_are_saved_for_keys_with_a_limit(db_web, browsers):
    gateway = db_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    service = keys_service(gateway.rt)
    limited = await service.create(account, name="prod", limits=KeyLimits(spend_limit=1000))
    free = await service.create(account, name="dev")
    page = await browser.get("/settings")
    assert f'name="percent-{limited.view.id}"' in page.text
    assert re.search(rf'name="percent-{free.view.id}"[^>]*disabled', page.text)
    assert "No spend limit" in text_of(page.text)

    refused = await browser.submit(
        "/settings", "/settings/notifications/key-alerts", {f"percent-{limited.view.id}": "150"}
    )
    assert refused.status_code == 400
    assert f'id="f-percent-{limited.view.id}-error"' in refused.text
    assert 'value="150"' in refused.text  # shown as typed, beside its error
    saved = await browser.submit(
        "/settings", "/settings/notifications/key-alerts", {f"percent-{limited.view.id}": "80%"}
    )
    assert saved.status_code == 303
    shown = text_of((await browser.get("/settings")).text)
    assert "Limit 1,000 credits a month: email at 800" in shown
    async with gateway.rt.db.read() as session:
        row = await session.get(KeySpendAlert, limited.view.id, populate_existing=True)
    assert row is not None and row.percent == 80 and row.armed
    cleared = await browser.submit(
        "/settings", "/settings/notifications/key-alerts", {f"percent-{limited.view.id}": ""}
    )
    assert cleared.status_code == 303
    async with gateway.rt.db.read() as session:
        assert await session.get(KeySpendAlert, limited.view.id) is None


async def test_a_threshold_set_on_the_page_mails_its_crossing(web, browsers):
    browser = browsers(web)
    account = await verified(web, browser)
    await grant(web, account, 3 * PRICE)
    assert (await save(browser, str(2 * PRICE + 1))).status_code == 303
    created = await keys_service(web.rt).create(account, name="app")

    async def generate() -> int:
        answer = await web.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(created.plaintext),
        )
        return answer.status_code

    assert await generate() == 200  # 80 of 81: crossed, seen by the request's own process
    await web.rt.alerts.settle()
    async with web.rt.db.read() as session:
        user = await users.find_user_by_email(session, await _email_of(web, account))
    assert user is not None
    [mail] = [m for m in await mail_to(web.rt, user.email) if "balance" in m.subject]
    assert mail.subject == "Your reapi balance is below 81 credits"
    assert "now 80 credits" in mail.text and "/dashboard/billing" in mail.text
    assert "/settings#notifications" in mail.text
    assert await generate() == 200  # 40: no second mail
    await web.rt.alerts.settle()
    assert len([m for m in await mail_to(web.rt, user.email) if "balance" in m.subject]) == 1


async def _email_of(gateway, account: str) -> str:
    from reapi_server.accounts import repository as accounts

    async with gateway.rt.db.read() as session:
        email = await accounts.owner_email(session, account)
    assert email is not None
    return email
