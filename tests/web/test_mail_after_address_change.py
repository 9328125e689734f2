"""Mail rows follow their person, not only their current address: after an email change, the
rows to the old address (the notices of the change, anything sent there before) and to an
address a change was asked for are in the person's export and go with their deletion (SQLite
and PostgreSQL). Before, both looked only at the current address: the old one stayed in the
outbox for 30 days after the account was deleted, and was missing from the export."""

from __future__ import annotations

from sqlalchemy import select
from tests.web.helpers import PASSWORD, mail_to, new_email

from reapi_server.models import OutboxMessage


async def _change(browser, new: str) -> None:
    asked = await browser.submit(
        "/settings/email", "/settings/email", {"email": new, "current_password": PASSWORD}
    )
    assert asked.status_code == 303, asked.text


async def _rows_to(rt, *addresses: str) -> list[tuple[str, str]]:
    async with rt.db.read() as session:
        rows = await session.execute(
            select(OutboxMessage.to_address, OutboxMessage.template).where(
                OutboxMessage.to_address.in_(addresses)
            )
        )
        return [tuple(row) for row in rows]


async def _moved(gateway, browsers) -> tuple[object, str, str, str]:
    """A person who signed up at `old`, moved to `new`, then asked to move to `pending`
    (never confirmed)."""
    old, new, pending = new_email(), new_email(), new_email()
    browser = browsers(gateway)
    await browser.sign_up(old)
    await _change(browser, new)
    [mail] = await mail_to(gateway.rt, new)
    done = await browser.submit(
        mail.link("/settings/email/confirm"),
        "/settings/email/confirm",
        {"token": mail.token("/settings/email/confirm")},
    )
    assert done.status_code == 303
    await _change(browser, pending)
    await mail_to(gateway.rt, pending)  # delivered: only the metadata row is left
    return browser, old, new, pending


async def test_the_export_lists_mail_to_every_address_the_person_had(db_web, browsers):
    browser, old, new, pending = await _moved(db_web, browsers)
    other = browsers(db_web)
    await other.sign_up(new_email())  # someone else's mail is not theirs

    document = (await browser.get("/settings/data/export.json")).json()
    exported = {(m["to"], m["message"]) for m in document["mail"]}
    assert (old, "email_changed") in exported
    assert (old, "email_change_requested") in exported
    assert (pending, "change_email") in exported
    assert {to for to, _ in exported} == {old, new, pending}


async def test_deletion_drops_mail_to_the_old_and_the_asked_for_address(db_web, browsers):
    browser, old, new, pending = await _moved(db_web, browsers)
    assert await _rows_to(db_web.rt, old, pending)  # there before the deletion

    deleted = await browser.submit(
        "/settings/delete",
        "/settings/delete",
        {"current_password": PASSWORD, "confirmation": new},
    )
    assert deleted.status_code == 303, deleted.text
    await mail_to(db_web.rt, new)  # the confirmation is sent, and its row goes
    assert await _rows_to(db_web.rt, old, new, pending) == []


async def test_the_next_owner_of_an_old_address_gets_none_of_its_mail(db_web, browsers):
    """Someone who signs up with an address another person left: the mail sent there before
    is the other person's, in their export and not in the newcomer's, nor deleted with them."""
    _, old, _, _ = await _moved(db_web, browsers)
    newcomer = browsers(db_web)
    await newcomer.sign_up(old)
    await mail_to(db_web.rt, old)
    theirs = (await newcomer.get("/settings/data/export.json")).json()["mail"]
    assert [m["message"] for m in theirs] == ["welcome"]
    before = await _rows_to(db_web.rt, old)
    deleted = await newcomer.submit(
        "/settings/delete", "/settings/delete", {"current_password": PASSWORD, "confirmation": old}
    )
    assert deleted.status_code == 303, deleted.text
    await mail_to(db_web.rt, old)
    left = sorted(t for _, t in await _rows_to(db_web.rt, old))
    assert len(before) == 4  # the first person's three, the newcomer's welcome
    assert left == ["email_change_requested", "email_changed", "welcome"]
