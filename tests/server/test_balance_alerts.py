"""Low-balance alerts: a crossing mails once, staying below mails no more, going back above
arms the alert again; two processes seeing one crossing mail once; a key's share of its spend
limit likewise, once per period; crossings no request saw are caught by the periodic pass; and
the request path never touches the alert tables. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import pytest
from sqlalchemy import select
from tests.server.helpers import auth, ledger_matches, make_account
from tests.server.other_process import OtherProcess
from tests.server.test_credits import PRICE
from tests.server.test_key_limits import Clock, at, limited

from reapi_server.alerts import crossings
from reapi_server.alerts import settings as alerts
from reapi_server.credits import service as credits
from reapi_server.models import BalanceAlert, KeySpendAlert, OutboxMessage

ALERT_TEMPLATES = ("balance_low", "key_spend_high")


async def generate(gateway, key: str, client=None) -> int:
    response = await (client or gateway.client).post(
        "/v1/images/generations", json={"prompt": "p", "model": "gpt-image-2"}, headers=auth(key)
    )
    return response.status_code


async def set_thresholds(rt, account: str, *thresholds: int) -> None:
    async with rt.db.write() as session:
        await alerts.save_thresholds(session, account, list(thresholds), now=rt.now())
    await rt.alerts.refresh(account)


async def alert_mail(rt) -> list[OutboxMessage]:
    """The alert mails queued, oldest first."""
    await rt.alerts.settle()
    async with rt.db.read() as session:
        result = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.template.in_(ALERT_TEMPLATES))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        return list(result.scalars())


async def armed(rt, account: str) -> dict[int, bool]:
    async with rt.db.read() as session:
        result = await session.execute(
            select(BalanceAlert.threshold, BalanceAlert.armed).where(
                BalanceAlert.account_id == account
            )
        )
        return {int(t): bool(a) for t, a in result.all()}


async def test_a_crossing_mails_once_and_going_back_above_arms_it_again(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    email = f"low-{secrets.token_hex(3)}@example.com"
    account, key = await make_account(rt, credits=150, email=email)
    await set_thresholds(rt, account, 100, 20)
    assert await armed(rt, account) == {100: True, 20: True}

    assert await generate(gateway, key) == 200  # 110: above
    assert await alert_mail(rt) == []
    assert await generate(gateway, key) == 200  # 70: crossed 100
    [mail] = await alert_mail(rt)
    assert mail.to_address == email and mail.template == "balance_low"
    assert "below 100 credits" in mail.subject
    assert "now 70 credits" in (mail.text_body or "")
    assert "/dashboard/billing" in (mail.text_body or "")
    assert await armed(rt, account) == {100: False, 20: True}

    assert await generate(gateway, key) == 200  # 30: still below 100, above 20
    assert len(await alert_mail(rt)) == 1

    async with rt.db.write() as session:
        await credits.grant(session, account, 200, rt.now())  # 230
    assert await generate(gateway, key) == 200  # 190: the hold's closing sees it above
    assert len(await alert_mail(rt)) == 1
    assert await armed(rt, account) == {100: True, 20: True}
    for _ in range(3):
        assert await generate(gateway, key) == 200  # 150, 110, 70: crossed again
    mails = await alert_mail(rt)
    assert len(mails) == 2 and "now 70 credits" in (mails[1].text_body or "")
    assert await ledger_matches(rt, account) == (70, 0)


async def test_two_processes_that_see_one_crossing_mail_once(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    account, key = await make_account(rt, credits=6 * PRICE)
    await set_thresholds(rt, account, 5 * PRICE + 1)
    async with OtherProcess(gateway) as other:
        await other.call(other.rt.alerts.refresh)

        async def elsewhere() -> int:
            response = await other.request(
                "POST",
                "/v1/images/generations",
                json={"prompt": "p", "model": "gpt-image-2"},
                headers=auth(key),
            )
            return response.status_code

        for _ in range(2):  # each time both processes close a hold and see the balance below
            assert await asyncio.gather(generate(gateway, key), elsewhere()) == [200, 200]
        await other.call(other.rt.alerts.settle)
        mails = await alert_mail(rt)
    assert len(mails) == 1, [m.subject for m in mails]
    assert await armed(rt, account) == {5 * PRICE + 1: False}
    assert await ledger_matches(rt, account) == (2 * PRICE, 0)


async def test_a_keys_share_of_its_limit_mails_once_per_period(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    clock = Clock(at("2027-05-10T12:00:00"))
    rt.clock = clock
    account, key, key_id = await limited(gateway, spend_limit=5 * PRICE, spend_period="monthly")
    async with rt.db.write() as session:
        await alerts.save_key_percent(session, account, key_id, 50, now=rt.now())
    await rt.alerts.refresh(account)

    assert await generate(gateway, key) == 200  # 40 of 200
    assert await generate(gateway, key) == 200  # 80
    assert await alert_mail(rt) == []
    assert await generate(gateway, key) == 200  # 120: past 50% (100)
    [mail] = await alert_mail(rt)
    assert mail.template == "key_spend_high" and "50%" in mail.subject
    assert "spent 120 of its 200 credits this month" in (mail.text_body or "")
    assert "2027-06-01 00:00 UTC" in (mail.text_body or "")
    assert await generate(gateway, key) == 200  # 160: no more this month
    assert len(await alert_mail(rt)) == 1

    clock.now = at("2027-06-02T08:00:00")  # a new period: its counter starts from nothing
    for _ in range(3):
        assert await generate(gateway, key) == 200  # 40 (armed again), 80, 120: crossed
    mails = await alert_mail(rt)
    assert len(mails) == 2 and "2027-07-01 00:00 UTC" in (mails[1].text_body or "")
    async with rt.db.read() as session:
        row = await session.get(KeySpendAlert, key_id, populate_existing=True)
    assert row is not None and not row.armed and row.fired_period == at("2027-06-01T00:00:00")


async def test_the_periodic_pass_mails_what_no_request_saw(db_gateway):
    """An operator takes credit away: no request closed, the pass finds the crossing; credit
    added arms it again; a threshold set above the balance is no crossing."""
    gateway = db_gateway
    rt = gateway.rt
    account, _ = await make_account(rt, credits=150)
    await set_thresholds(rt, account, 100, 500)
    assert await armed(rt, account) == {100: True, 500: False}
    assert await crossings.sweep(rt.alerts.mail) == 0

    async with rt.db.write() as session:
        await credits.adjust(session, account, -100, rt.now())  # 50
    assert await crossings.sweep(rt.alerts.mail) == 1
    assert await crossings.sweep(rt.alerts.mail) == 0
    assert len(await alert_mail(rt)) == 1
    async with rt.db.write() as session:
        await credits.adjust(session, account, 100, rt.now())  # 150
    await crossings.sweep(rt.alerts.mail)
    assert await armed(rt, account) == {100: True, 500: False}
    assert len(await alert_mail(rt)) == 1


@pytest.mark.postgres
async def test_requests_never_wait_for_the_alert_tables(postgres_server, make_gateway):
    """Another transaction holds every alert table locked: requests crossing a threshold and a
    key's share still answer at once (they read and write none of it); the crossings' writes
    wait for the lock, then mail."""
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    gateway = await make_gateway(database_url=postgres_server.url(name))
    rt = gateway.rt
    account, key, key_id = await limited(gateway, credits=3 * PRICE, spend_limit=4 * PRICE)
    await set_thresholds(rt, account, 2 * PRICE + 1)
    async with rt.db.write() as session:
        await alerts.save_key_percent(session, account, key_id, 25, now=rt.now())
    await rt.alerts.refresh()
    blocker = await asyncpg.connect(
        host="127.0.0.1", port=postgres_server.port, user="reapi", database=name
    )
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "LOCK TABLE balance_alerts, key_spend_alerts, outbox_messages IN ACCESS EXCLUSIVE MODE"
        )
        started = time.perf_counter()
        assert await asyncio.wait_for(generate(gateway, key), 10) == 200  # crosses both
        assert time.perf_counter() - started < 5
        await asyncio.sleep(0.3)
        assert len(rt.alerts._tasks) == 2  # the two writes, waiting for the lock
        await transaction.rollback()
    finally:
        await blocker.close()
    mails = await alert_mail(rt)
    assert sorted(m.template for m in mails) == ["balance_low", "key_spend_high"]


async def test_with_automatic_top_up_on_the_mail_says_it_is(db_gateway):
    """A crossing while automatic top-up is on: the mail says a pack is bought below its
    threshold, instead of only "add credits to keep your keys working" while the top-up's
    receipt arrives a second later. Paused, it says "add credits" again."""
    from reapi_server.billing import repository as billing_rows

    gateway = db_gateway
    rt = gateway.rt
    account, key = await make_account(rt, credits=150)
    async with rt.db.write() as session:
        profile = await billing_rows.profile_or_new(session, account, rt.now())
        profile.payment_method_id, profile.auto_enabled, profile.auto_threshold = "pm_1", True, 50
    await set_thresholds(rt, account, 100)
    assert await generate(gateway, key) == 200  # 110
    assert await generate(gateway, key) == 200  # 70: crossed 100
    [mail] = await alert_mail(rt)
    text = mail.text_body or ""
    assert "Automatic top-up is on: whenever the balance is below 50 credits" in text
    assert "Add credits to keep your keys working" not in text
    assert "Automatic top-up is on" in (mail.html_body or "")

    async with rt.db.write() as session:
        profile = await billing_rows.profile_or_new(session, account, rt.now())
        profile.auto_paused_reason = "card_declined"
        await credits.grant(session, account, 200, rt.now())  # 270
    for _ in range(5):
        assert await generate(gateway, key) == 200  # 230 (re-armed), 190, 150, 110, 70
    mails = await alert_mail(rt)
    assert len(mails) == 2
    assert "Add credits to keep your keys working" in (mails[1].text_body or "")
    assert "Automatic top-up" not in (mails[1].text_body or "")
