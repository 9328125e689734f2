"""A low-balance alert and automatic top-up together: no "your balance is low" mail while a
top-up is about to refill the account (its receipt would follow a second later), and the mail
once the top-up fails and the balance stays low. Against the Stripe simulator."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.server.test_auto_top_up import _saved_card, billing  # noqa: F401 (fixture)

from reapi_server.alerts import crossings
from reapi_server.alerts import settings as alerts
from reapi_server.billing.auto_top_up import consider, top_up_coming
from reapi_server.credits import repository as credit_rows


@pytest.fixture
def cooldown() -> float:
    return 600.0


@pytest.fixture
def sweep() -> float:
    """The gateway's own top-up task looks at every account at its start only: the test
    decides when the top-up runs (`consider`)."""
    return 3600.0


def alert_mail(live) -> crossings.AlertMail:
    async def coming(session: AsyncSession, account_id: str) -> bool:
        return await top_up_coming(session, live.billing, account_id)

    return crossings.AlertMail(live.db, live.billing.mail, time.time, coming)


async def _below_both(live, account: str) -> None:
    """An alert at 500 credits, the top-up's threshold too; the balance taken to 400 (not by
    a request: nothing tells the top-up task)."""
    async with live.db.write() as session:
        await alerts.save_thresholds(session, account, [500], now=time.time())
        assert await credit_rows.adjust(session, account, -600, time.time())


async def test_no_alert_mail_while_a_top_up_is_about_to_run(billing):  # noqa: F811
    account = await _saved_card(billing, threshold=500)  # 1,000 credits
    await _below_both(billing, account)
    mail = alert_mail(billing)
    assert await crossings.sweep(mail) == 0  # due: waiting for it
    assert await billing.mail("balance_low") == []
    assert await consider(billing.billing, account) in ("credited", "pending")
    await billing.paid(account, 1400)
    assert await crossings.sweep(mail) == 0  # above again: nothing to say
    assert await billing.mail("balance_low") == []


async def test_the_alert_is_mailed_once_the_top_up_fails(billing):  # noqa: F811
    account = await _saved_card(billing, threshold=500)
    await _below_both(billing, account)
    mail = alert_mail(billing)
    assert await crossings.sweep(mail) == 0
    billing.sim.queue_off_session_outcome("card_declined")
    assert await consider(billing.billing, account) == "failed"  # auto top-up paused

    async def mailed() -> list:
        await crossings.sweep(mail)  # the periodic pass (the gateway's own may come first)
        return await billing.mail("balance_low")

    assert len(await billing.wait_until(mailed)) == 1
    email = await billing.email_of(account)
    # The receipt of the first purchase, the top-up's "paused" notice, then the alert.
    [low] = [m for m in await billing.mail_files(email, count=3) if "below" in m.subject]
    assert "now 400 credits" in low.text and "Add credits" in low.text
    assert "Automatic top-up is on" not in low.text
    assert await crossings.sweep(mail) == 0 and len(await billing.mail("balance_low")) == 1
