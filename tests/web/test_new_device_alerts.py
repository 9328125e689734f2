"""New sign-in from a new device: an optional mail (Settings → Notifications), sent once per
device (a keyed hash of the user agent, versions masked, and the /24 or /64 network), never for a
known one, never with the setting off; known devices are forgotten after 90 days. SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from tests.web.helpers import mail_to, new_email, web_context
from tests.web.two_factor_helpers import code_at, turn_on

from reapi_server.identity.devices import device_hash
from reapi_server.identity.housekeeping import purge_once
from reapi_server.identity.sessions import Client
from reapi_server.models import KnownDevice

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FIREFOX_NEXT = "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DAY = 86_400


def _as(browser, user_agent):
    browser.client.headers["user-agent"] = user_agent
    return browser


async def _alerts(gateway, email):
    return [m for m in await mail_to(gateway.rt, email) if "New sign-in" in m.subject]


async def _set_alerts(browser, on):
    data = {"new_device_alerts": "yes"} if on else {}
    saved = await browser.submit("/settings", "/settings/notifications/devices", data)
    assert saved.status_code == 303 and "done=device_alerts_saved" in saved.headers["location"]


async def test_an_alert_once_per_new_device_and_none_for_a_known_one(db_web, browsers):
    email = new_email()
    laptop = _as(browsers(db_web), FIREFOX)
    await laptop.sign_up(email)
    await _set_alerts(laptop, True)
    page = (await laptop.get("/settings")).text
    assert 'value="yes" checked' in page.split('id="f-new_device_alerts"')[1][:80]
    # The browser that turned them on is known; so is it after a browser update.
    await _as(browsers(db_web), FIREFOX).sign_in(email)
    await _as(browsers(db_web), FIREFOX_NEXT).sign_in(email)
    assert await _alerts(db_web, email) == []
    # A new device: one mail, with when, what and where.
    await _as(browsers(db_web), SAFARI).sign_in(email)
    [alert] = await _alerts(db_web, email)
    assert "Safari on iOS" in alert.text and "127.0.0.1" in alert.text and "UTC" in alert.text
    assert "List-Unsubscribe" not in alert.headers  # transactional
    # The same device again: known now.
    await _as(browsers(db_web), SAFARI).sign_in(email)
    assert len(await _alerts(db_web, email)) == 1


async def test_no_alert_with_the_setting_off(db_web, browsers):
    email = new_email()
    laptop = _as(browsers(db_web), FIREFOX)
    await laptop.sign_up(email)
    await _as(browsers(db_web), SAFARI).sign_in(email)  # off by default
    await _set_alerts(laptop, True)
    await _set_alerts(laptop, False)
    await _as(browsers(db_web), SAFARI).sign_in(email)
    assert await _alerts(db_web, email) == []
    async with db_web.rt.db.read() as session:  # off: nothing is kept about devices
        assert (await session.execute(select(KnownDevice))).scalars().all() == []


async def test_a_device_unseen_for_90_days_is_new_again(db_web, browsers, clock):
    email = new_email()
    laptop = _as(browsers(db_web), FIREFOX)
    await laptop.sign_up(email)
    await _set_alerts(laptop, True)
    await _as(browsers(db_web), SAFARI).sign_in(email)
    clock.advance(91 * DAY)
    await purge_once(db_web.rt.db, web_context(db_web).identity.config.sessions, clock.now)
    async with db_web.rt.db.read() as session:
        assert (await session.execute(select(KnownDevice))).scalars().all() == []
    await _as(browsers(db_web), SAFARI).sign_in(email)
    assert len(await _alerts(db_web, email)) == 2


async def test_with_2fa_the_alert_comes_after_the_second_factor(db_web, browsers, clock):
    email = new_email()
    laptop = _as(browsers(db_web), FIREFOX)
    await laptop.sign_up(email)
    secret, _ = await turn_on(laptop, clock.now)
    clock.advance(30)
    await _set_alerts(laptop, True)
    phone = _as(browsers(db_web), SAFARI)
    await phone.sign_in(email)
    assert await _alerts(db_web, email) == []  # the password alone signs nobody in
    done = await phone.submit(
        "/login/2fa", "/login/2fa", {"code": code_at(secret, clock.now), "next": "/settings"}
    )
    assert done.status_code == 303
    assert len(await _alerts(db_web, email)) == 1


def test_a_device_is_a_keyed_hash_of_the_browser_and_its_network():
    key = b"k" * 32
    base = device_hash(key, "user_1", Client("203.0.113.7", FIREFOX))
    assert device_hash(key, "user_1", Client("203.0.113.99", FIREFOX_NEXT)) == base
    assert device_hash(key, "user_1", Client("203.0.114.7", FIREFOX)) != base
    assert device_hash(key, "user_1", Client("203.0.113.7", SAFARI)) != base
    assert device_hash(key, "user_2", Client("203.0.113.7", FIREFOX)) != base
    assert device_hash(b"j" * 32, "user_1", Client("203.0.113.7", FIREFOX)) != base
    v6 = device_hash(key, "user_1", Client("2001:db8:1:2::5", FIREFOX))
    assert device_hash(key, "user_1", Client("2001:db8:1:2:ffff::1", FIREFOX)) == v6
    assert device_hash(key, "user_1", Client("2001:db8:1:3::5", FIREFOX)) != v6
    # An IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) is in its IPv4 /24, not in
    # the `::/64` that holds every IPv4 address.
    assert device_hash(key, "user_1", Client("::ffff:203.0.113.99", FIREFOX)) == base
    assert device_hash(key, "user_1", Client("::ffff:198.51.100.7", FIREFOX)) != base
    assert "203.0.113" not in base and "Firefox" not in base
