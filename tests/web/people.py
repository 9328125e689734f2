"""People with rows in every table: the export and deletion tests' fixture data, and the
test's own (independent of the code under test) idea of which rows are about a person.

`seed_person` signs a person up through the pages and uses the API as a customer would, so
that each table about people gets at least one row; a table added later that this leaves
empty fails the export test until it is seeded here too."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table, func, or_, select
from tests.server.helpers import auth
from tests.server.test_videos import create, drive
from tests.web.helpers import Browser, new_email

from reapi_server.accounts.service import account_of
from reapi_server.api_keys.service import issue_key
from reapi_server.billing import repository as payments
from reapi_server.credits import repository as credits
from reapi_server.derived_keys import derive_key, keyed_digest
from reapi_server.identity import repository as users
from reapi_server.models import Base

#: Tables whose rows are about nobody in particular (and why): nothing to export or delete.
NOT_PERSONAL = {
    "pending_deletions": "storage keys waiting to be deleted from storage; no owner",
}


@dataclass
class Person:
    email: str
    user_id: str
    account_id: str
    key: str
    key_id: str
    browser: Browser
    image_request_id: str
    image_urls: list[str]
    video_id: str
    payment_id: str
    #: Values that identify this person's rows (none may appear in anyone else's export).
    identifiers: set[str] = field(default_factory=set)


async def seed_person(gateway, browsers, *, product: str = "Starter pack") -> Person:
    rt = gateway.rt
    email = new_email()
    browser = browsers(gateway)
    await browser.sign_up(email)  # user, consents, membership, account, session, link, mail
    await browsers(gateway).sign_in(email, "not the password at all")  # sign-in throttle rows
    async with rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    async with rt.db.write() as session:
        account = await account_of(session, user.id)
        await credits.grant(session, account.id, 10_000, rt.now())
        key_row, issued = await issue_key(session, account.id, name="laptop", now=rt.now())
        suffix = secrets.token_hex(6)
        payment = await payments.insert(
            session,
            account_id=account.id,
            product=product,
            credits=1000,
            amount=900,
            currency="eur",
            status="paid",
            now=rt.now(),
            stripe_customer_id=f"cus_{suffix}",
            stripe_checkout_session_id=f"cs_{suffix}",
            stripe_payment_intent_id=f"pi_{suffix}",
            invoice_id=f"in_{suffix}",
            invoice_url=f"https://invoice.example/in_{suffix}",
        )
    image = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a lighthouse", "response_format": "url"},
        headers={**auth(issued.plaintext), "idempotency-key": f"idem-{suffix}"},
    )
    assert image.status_code == 200, image.text
    video = await create(gateway, issued.plaintext)
    assert video.status_code == 200, video.text
    await drive(gateway)
    person = Person(
        email=email,
        user_id=user.id,
        account_id=account.id,
        key=issued.plaintext,
        key_id=key_row.id,
        browser=browser,
        image_request_id=image.headers["x-request-id"],
        image_urls=[d["url"] for d in image.json()["data"]],
        video_id=video.json()["id"],
        payment_id=payment.id,
    )
    person.identifiers = {
        email,
        user.id,
        account.id,
        key_row.id,
        payment.id,
        f"cus_{suffix}",
        person.image_request_id,
        person.video_id,
        *(url.rsplit("/", 2)[-2] for url in person.image_urls),
    }
    return person


def about(table: Table, person: Person, throttle_key: bytes) -> ColumnElement[bool] | None:
    """Which rows of `table` are about `person`, or None when the test does not know."""
    c = table.c
    if table.name == "users":
        return c.id == person.user_id
    if table.name == "accounts":
        return c.id == person.account_id
    if "user_id" in c:
        return c.user_id == person.user_id
    if "account_id" in c:
        return c.account_id == person.account_id
    if table.name == "outbox_messages":
        return c.to_address == person.email
    if table.name == "auth_throttle":
        digest = keyed_digest(throttle_key, person.email)[:40]
        return or_(c.key.endswith(":" + digest), c.key.endswith(":" + person.user_id))
    return None


def throttle_key_of(rt) -> bytes:
    return derive_key(rt.fingerprint_secret, "throttle")


def personal_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in NOT_PERSONAL]


async def count_about(session, table: Table, person: Person, throttle_key: bytes) -> int:
    condition = about(table, person, throttle_key)
    assert condition is not None, (
        f"table {table.name}: say how its rows relate to a person (tests/web/people.py), or "
        "list it in NOT_PERSONAL with the reason"
    )
    result = await session.execute(select(func.count()).select_from(table).where(condition))
    return int(result.scalar_one())
