"""People with rows in every table: the export and deletion tests' fixture data, and the
test's own (independent of the code under test) idea of which rows are about a person.

`seed_person` signs a person up through the pages and uses the API as a customer would, so
that each table about people gets at least one row; a table added later that this leaves
empty fails the export test until it is seeded here too. Its gateway has GitHub and Google
sign-in (the `people_web` and `providers` fixtures)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Table, func, or_, select
from tests.server.helpers import auth
from tests.server.test_videos import create, drive
from tests.web.helpers import Browser, Clock, new_email, web_context
from tests.web.oauth import at_provider, local, start_link
from tests.web.two_factor_helpers import code_at, turn_on

from reapi_server.accounts.service import account_of
from reapi_server.alerts import settings as alert_settings
from reapi_server.api_keys.limits import KeyLimits
from reapi_server.api_keys.service import issue_key
from reapi_server.audit import Actor
from reapi_server.backoffice import actions
from reapi_server.billing import repository as payments
from reapi_server.credits import repository as credits
from reapi_server.derived_keys import derive_key, keyed_digest
from reapi_server.email.notices import NoticeDraft, Notices
from reapi_server.identity import repository as users
from reapi_server.models import (
    Base,
    BillingProfile,
    Dispute,
    Payment,
    Refund,
    TopUp,
    VideoJob,
    WebhookDelivery,
)
from reapi_server.promo import repository as promo_codes
from reapi_server.promo import service as promo
from reapi_server.testing.oauth_sim import FakeIdentity
from reapi_server.webhooks import repository as webhooks

#: Tables whose rows are about nobody in particular (and why): nothing to export or delete.
NOT_PERSONAL = {
    "pending_deletions": "storage keys waiting to be deleted from storage; no owner",
    "commit_markers": "one sequence number per server process (group commit); no owner",
    "notices": "the operator's notices (kind, subject, date); who got one: notice_deliveries",
    "fleet_secret": "the installation's one secret (one row); no owner",
    "stripe_events": "Stripe's event ids and types (what they are about is fetched from Stripe)",
    "promo_codes": "the operator's promotion codes; who redeemed one: promo_redemptions",
    "deleted_top_ups": "made at deletion: ids of top-ups still payable (ours, Stripe's), no owner",
    "schema_compatibility": "the migration revisions whose code runs on the schema; no owner",
}
#: Tables whose rows about a person outlive them on purpose (and why), naming them. None does:
#: `payments` and `audit_log` keep rows, but detached (the person's ids emptied).
KEPT_AFTER_DELETION: dict[str, str] = {}


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
    #: Their authenticator app's secret and their backup codes (two-factor is on).
    totp_secret: str
    backup_codes: list[str]
    #: The GitHub user linked to them.
    github_id: str
    clock: Clock
    #: Values that identify this person's rows (none may appear in anyone else's export).
    identifiers: set[str] = field(default_factory=set)

    def fresh_code(self) -> str:
        """The code their app shows 30 s later (a code works once)."""
        self.clock.advance(30)
        return code_at(self.totp_secret, self.clock.now)


async def seed_person(gateway, browsers, providers, *, product: str = "Starter pack") -> Person:
    rt = gateway.rt
    email = new_email()
    suffix = secrets.token_hex(6)
    browser = browsers(gateway)
    await browser.sign_up(email)  # user, consents, membership, account, session, link, mail
    await browsers(gateway).sign_in(email, "not the password at all")  # sign-in throttle rows
    # The newsletter; new-device alerts, which make this browser a known device.
    for action, choice in (("newsletter", "newsletter"), ("devices", "new_device_alerts")):
        path = f"/settings/notifications/{action}"
        saved = await browser.submit("/settings", path, {choice: "yes"})
        assert saved.status_code == 303, saved.text
    github_id = str(secrets.randbelow(10**12) + 10**12)
    providers.github.add_identity(
        FakeIdentity(id=github_id, name="Person", email=email, login=f"person-{suffix}")
    )
    linked = await browser.get(local(at_provider(await start_link(browser, "github"), github_id)))
    assert linked.status_code == 303 and "identity_linked" in linked.headers["location"]
    await start_link(browser, "google")  # left at Google's page: a sign-in under way
    secret, backup_codes = await turn_on(browser, rt.now())  # two-factor and backup codes
    await _policy_notice(gateway, suffix)  # a notice delivery
    async with rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    async with rt.db.write() as session:
        account = await account_of(session, user.id)
        await credits.grant(session, account.id, 10_000, rt.now())
        # An operator's correction: a ledger adjustment and its audit row.
        await actions.adjust_credits(session, Actor.cli(), account.id, 50, "goodwill", now=rt.now())
        key_row, issued = await issue_key(
            session,
            account.id,
            name="laptop",
            now=rt.now(),
            limits=KeyLimits(spend_limit=100_000, spend_period="weekly"),
        )
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
        # Billing: a top-up, a refund and a dispute of the payment, a saved card.
        session.add_all(
            [
                TopUp(
                    id=f"tu_{suffix}",
                    account_id=account.id,
                    kind="checkout",
                    pack_id="starter",
                    product=product,
                    credits=1000,
                    amount=900,
                    currency="eur",
                    status="paid",
                    save_card=True,
                    stripe_checkout_session_id=f"cs_{suffix}",
                    created_at=rt.now(),
                ),
                Refund(
                    id=f"re_{suffix}",
                    payment_id=payment.id,
                    amount=100,
                    credits=111,
                    credits_taken=111,
                    credits_debt=0,
                    credits_waived=0,
                    requested_by="operator",
                    created_at=rt.now(),
                ),
                Dispute(
                    id=f"dp_{suffix}",
                    payment_id=payment.id,
                    account_id=account.id,
                    amount=800,
                    credits=888,
                    status="won",
                    created_at=rt.now(),
                ),
                BillingProfile(
                    account_id=account.id,
                    stripe_customer_id=f"cus_{suffix}",
                    payment_method_id=f"pm_{suffix}",
                    card_label="Visa •••• 4242",
                    auto_enabled=False,
                    auto_threshold=0,
                    auto_monthly_cap=0,
                    updated_at=rt.now(),
                ),
            ]
        )
    # A promotion code redeemed (as everyone seeded does: the code is nobody's), low-balance
    # thresholds and a key's spend alert.
    async with rt.db.write() as session:
        if await promo_codes.by_code(session, "SEEDED-WELCOME") is None:
            await promo.create_code(
                session,
                promo.CodeTerms(code="SEEDED-WELCOME", credits=25),
                created_by=None,
                now=rt.now(),
            )
        await alert_settings.save_thresholds(session, account.id, [500, 20_000], now=rt.now())
        await alert_settings.save_key_percent(session, account.id, key_row.id, 80, now=rt.now())
    await promo.redeem(
        rt.db, account_id=account.id, user_id=user.id, text="seeded-welcome", now=rt.now()
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
    # A webhook delivery already made for the video (a receiver of the person's own).
    async with rt.db.write() as session:
        job = await session.get(VideoJob, video.json()["id"])
        job.webhook_url = f"https://hooks.example/{suffix}"
        await webhooks.insert(
            session,
            WebhookDelivery(
                id=f"msg_{suffix}",
                account_id=account.id,
                api_key_id=key_row.id,
                video_id=job.id,
                url=job.webhook_url,
                video_object=json.dumps({"id": job.id, "object": "video", "status": "completed"}),
                status="delivered",
                attempts=1,
                next_attempt_at=rt.now(),
                created_at=rt.now(),
            ),
        )
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
        totp_secret=secret,
        backup_codes=backup_codes,
        github_id=github_id,
        clock=rt.clock,
    )
    async with rt.db.read() as session:
        [device] = await users.list_known_devices(session, user.id)
    person.identifiers = {
        email,
        user.id,
        account.id,
        key_row.id,
        payment.id,
        f"cus_{suffix}",
        f"tu_{suffix}",
        f"re_{suffix}",
        f"dp_{suffix}",
        person.image_request_id,
        person.video_id,
        github_id,
        device.device_hash,
        *(url.rsplit("/", 2)[-2] for url in person.image_urls),
    }
    return person


async def _policy_notice(gateway, suffix: str) -> None:
    """A policy change notice, as `reapi-server notify policy-change` sends it: to everyone
    (so it is nobody's identifier)."""
    web = web_context(gateway)
    today = datetime.fromtimestamp(gateway.rt.now(), UTC).date()
    notices = Notices(
        gateway.rt.db,
        composer=web.identity.mail,
        unsubscribe_key=web.subscriptions.key,
        clock=gateway.rt.now,
        newsletter_offered=web.subscriptions.offered,
    )
    draft = NoticeDraft(
        kind="policy_change",
        subject=f"Changes to our privacy policy ({suffix})",
        markdown="We keep usage records **60 days** from now on.",
        effective_on=today + timedelta(days=30),
    )
    assert (await notices.send(draft)).added >= 1


def about(table: Table, person: Person, throttle_key: bytes) -> ColumnElement[bool] | None:
    """Which rows of `table` are about `person`, or None when the test does not know."""
    c = table.c
    if table.name == "users":
        return c.id == person.user_id
    if table.name == "accounts":
        return c.id == person.account_id
    if table.name == "audit_log":
        return or_(c.target_user_id == person.user_id, c.account_id == person.account_id)
    if table.name == "refunds":  # through their payment (kept, detached, after deletion)
        owned = select(Payment.id).where(Payment.account_id == person.account_id)
        return c.payment_id.in_(owned.scalar_subquery())
    if table.name == "outbox_messages":  # by the person, and to their address
        return or_(c.user_id == person.user_id, c.to_address == person.email)
    if "user_id" in c:
        return c.user_id == person.user_id
    if "account_id" in c:
        return c.account_id == person.account_id
    if table.name == "auth_throttle":
        digest = keyed_digest(throttle_key, person.email)[:40]
        return or_(
            c.key.endswith(":" + digest),
            c.key.endswith(":" + person.user_id),
            c.key.endswith(":" + person.account_id),  # billing's limits, per account
        )
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
