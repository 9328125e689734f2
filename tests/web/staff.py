"""People for the site's tests: a signed-in customer and a signed-in admin (promoted as
`reapi-server users promote` does, then signed in again)."""

from __future__ import annotations

from tests.web.helpers import Browser, new_email

from reapi_server.accounts.service import account_of
from reapi_server.audit import Actor
from reapi_server.backoffice import actions
from reapi_server.identity import repository as users


async def user_id_of(gateway, email: str) -> str:
    async with gateway.rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    assert user is not None
    return user.id


async def account_id_of(gateway, email: str) -> str:
    user_id = await user_id_of(gateway, email)
    async with gateway.rt.db.read() as session:
        account = await account_of(session, user_id)
    assert account is not None
    return account.id


async def signed_in(gateway, browsers) -> tuple[Browser, str]:
    """(browser, email) of a new customer, signed in."""
    email = new_email()
    browser = browsers(gateway)
    await browser.sign_up(email)
    return browser, email


async def signed_in_admin(gateway, browsers) -> tuple[Browser, str]:
    """(browser, email) of a new admin, signed in after the promotion."""
    browser, email = await signed_in(gateway, browsers)
    user_id = await user_id_of(gateway, email)
    async with gateway.rt.db.write() as session:
        assert await actions.promote_user(session, Actor.cli(), user_id, now=gateway.rt.now())
    response = await browser.sign_in(email)
    assert response.status_code == 303, response.text
    return browser, email
