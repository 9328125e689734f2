"""Settings → Data → "Delete account" (and `reapi-server users delete`, the same service):
step-up and a typed confirmation first; then keys and sessions end at once (in every process),
running videos are cancelled with their holds released once, outputs go from storage, and
nothing about the person is left in any table but their payment records, detached and kept
for 7 years; the audit log's rows about them stay detached: what an operator did, without the
person's ids or the reason typed (SQLite and PostgreSQL, local disk and S3)."""

import asyncio
import json

import anyio
import pytest
from sqlalchemy import func, select, update
from tests.server.helpers import auth
from tests.server.s3 import moto_server  # noqa: F401  (fixture)
from tests.server.test_videos import create, drive
from tests.web.conftest import BASE
from tests.web.helpers import PASSWORD, mail_to, web_context
from tests.web.oauth import (
    ADA_GITHUB,
    accept_consent,
    at_provider,
    local,
    sign_in_with,
    start_again,
)
from tests.web.people import (
    KEPT_AFTER_DELETION,
    count_about,
    personal_tables,
    seed_person,
    throttle_key_of,
)
from tests.web.staff import signed_in_admin, user_id_of
from tests.web.two_factor_helpers import code_at
from typer.testing import CliRunner

from reapi_server.accounts.service import create_account
from reapi_server.audit import repository as audit
from reapi_server.cli import app as cli_app
from reapi_server.identity import repository as users
from reapi_server.identity.sessions import Client
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import (
    Account,
    ApiKey,
    LedgerEntry,
    OAuthIdentity,
    OAuthRequest,
    Payment,
    UsageRecord,
    VideoJob,
)


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def counts(rt, person) -> dict[str, int]:
    """Rows about `person` in every table about people."""
    key = throttle_key_of(rt)
    async with rt.db.read() as session:
        return {t.name: await count_about(session, t, person, key) for t in personal_tables()}


async def left_about(rt, person) -> dict[str, int]:
    """Rows about `person` after their deletion, but for the tables kept on purpose."""
    return {
        table: n
        for table, n in (await counts(rt, person)).items()
        if n and table not in KEPT_AFTER_DELETION
    }


async def delete_by_page(
    person,
    *,
    password: str = PASSWORD,
    code: str | None = None,
    confirmation: str | None = None,
):
    """Settings → Data → "Delete account": the password, the code their app shows now (two-factor
    is on) unless `code` is given, and the address typed."""
    return await person.browser.submit(
        "/settings/delete",
        "/settings/delete",
        {
            "current_password": password,
            "code": person.fresh_code() if code is None else code,
            "confirmation": person.email if confirmation is None else confirmation,
        },
    )


async def upstream_task(rt, video_id: str) -> str:
    async with rt.db.read() as session:
        return (await session.get(VideoJob, video_id)).upstream_task_id


def objects_of(gateway, person) -> set[str]:
    tasks = (person.image_request_id, person.video_id)
    return {key for key in gateway.stored() if any(f"/{task}/" in key for task in tasks)}


async def test_deletion_keeps_detached_payments_and_nothing_else(
    people_web, browsers, providers, make_gateway
):
    rt = people_web.rt
    alice = await seed_person(people_web, browsers, providers)
    bob = await seed_person(people_web, browsers, providers)
    running = (await create(people_web, alice.key)).json()  # queued upstream, its credit held
    task = await upstream_task(rt, running["id"])
    # Another server process on the same database, with alice's key in its cache.
    other = await make_gateway(database_url=rt.settings.resolved_database_url, public_base_url=BASE)
    assert (await other.client.get("/v1/credits", headers=auth(alice.key))).status_code == 200
    bob_before = await counts(rt, bob)
    assert objects_of(people_web, alice) and objects_of(people_web, bob)
    # Their mail so far delivered: with the file backend, a copy of each on the server's disk.
    assert await mail_to(rt, alice.email) and await mail_to(rt, bob.email)
    bobs_mail = {m.path for m in await mail_to(rt, bob.email)}

    deleted = await delete_by_page(alice)
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/login?done=account_deleted"
    assert (
        "Your account is deleted" in (await alice.browser.get("/login?done=account_deleted")).text
    )

    # Signed out; the keys are refused here, and at once by the other process too.
    assert (await alice.browser.get("/settings")).status_code == 303
    assert (await people_web.client.get("/v1/credits", headers=auth(alice.key))).status_code == 401
    image = {"model": "gpt-image-2", "prompt": "p"}
    refused = [
        await other.client.post("/v1/images/generations", json=image, headers=auth(alice.key)),
        # (Without its account check, an idempotency claim for an account that is gone
        # would retry for ever.)
        await other.client.post(
            "/v1/images/generations",
            json=image,
            headers={**auth(alice.key), "idempotency-key": "after-deletion"},
        ),
        await create(other, alice.key),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    # Refused before any credit, so no row: for the model while the key is still cached there,
    # for the key once that cache ran out (a loaded machine gets there within its 2 s).
    bad = {"model": "no-such-model", "prompt": "p"}
    assert (
        await other.client.post("/v1/images/generations", json=bad, headers=auth(alice.key))
    ).status_code in (400, 401, 404)
    await asyncio.sleep(2.1)  # the other process's key cache has run out
    assert (await other.client.get("/v1/credits", headers=auth(alice.key))).status_code == 401

    # The running video was cancelled upstream, once; the outputs' URLs and objects are gone.
    assert people_web.upstream.count(f"/videos/{task}", method="DELETE") == 1
    for url in alice.image_urls:
        assert (await people_web.client.get(url)).status_code == 404
    assert objects_of(people_web, alice) == set() and objects_of(people_web, bob)

    # The confirmation mail went to the address they had, and is the only message to them left
    # (the file backend's copies of the others went with them); after it, not a row about them.
    (mail,) = await mail_to(rt, alice.email)
    assert {m.path for m in await mail_to(rt, bob.email)} == bobs_mail
    assert mail.subject.endswith("account was deleted") and "7 years" in mail.text
    left = await left_about(rt, alice)
    assert left == {}, f"rows about a deleted person: {left}"
    async with rt.db.read() as session:
        payment = await session.get(Payment, alice.payment_id)
    assert payment.account_id is None and payment.detached_at is not None
    assert (payment.amount, payment.currency, payment.product) == (900, "eur", "Starter pack")
    assert payment.stripe_customer_id.startswith("cus_") and payment.invoice_id.startswith("in_")
    assert payment.invoice_url is None  # Stripe's hosted page shows the buyer: not kept

    # Bob is untouched.
    assert await counts(rt, bob) == bob_before
    assert (await people_web.client.get("/v1/credits", headers=auth(bob.key))).status_code == 200
    for url in bob.image_urls:
        assert (await people_web.client.get(url)).status_code == 200


async def test_an_image_request_in_flight_ends_and_its_rows_go_after(
    people_web, browsers, providers, monkeypatch, make_gateway
):
    """The person leaves while an image is being made: the request finishes (nothing
    crashes), the account waits closed — refusing every new request, in every process — and
    the sweeper removes what the request wrote."""
    rt = people_web.rt
    alice = await seed_person(people_web, browsers, providers)
    other = await make_gateway(database_url=rt.settings.resolved_database_url, public_base_url=BASE)
    assert (await other.client.get("/v1/credits", headers=auth(alice.key))).status_code == 200
    running = (await create(people_web, alice.key)).json()
    async with rt.db.read() as session:
        video_hold = (await session.get(VideoJob, running["id"])).hold_id
    stored, release = anyio.Event(), anyio.Event()
    put = rt.store.put

    async def held_put(key, body, content_type):
        stored.set()
        await release.wait()
        return await put(key, body, content_type)

    monkeypatch.setattr(rt.store, "put", held_put)
    request = asyncio.create_task(
        people_web.client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
            headers=auth(alice.key),
        )
    )
    await stored.wait()
    try:
        assert (await delete_by_page(alice)).status_code == 303
        # Closed and kept while the request runs; the video's hold released exactly once.
        assert await releases_of(rt, video_hold) == 1
        await drive(people_web)
        await sweep_once(rt)
        assert await releases_of(rt, video_hold) == 1
        async with rt.db.read() as session:
            account = await session.get(Account, alice.account_id)
        assert account is not None and account.deleted_at is not None
        await refused_while_closed(rt, alice, other)
    finally:
        release.set()  # whatever failed above, the request must end
        answer = await request
    assert answer.status_code == 200  # made and paid for before the person left
    url = answer.json()["data"][0]["url"]
    report = await sweep_once(rt)
    assert report.accounts_removed == 1
    assert (await people_web.client.get(url)).status_code == 404
    assert objects_of(people_web, alice) == set()
    assert not any(answer.headers["x-request-id"] in key for key in people_web.stored())
    assert len(await mail_to(rt, alice.email)) == 1  # the confirmation: kept until sent
    left = await left_about(rt, alice)
    assert left == {}, f"rows about a deleted person: {left}"


async def releases_of(rt, hold_id: str) -> int:
    async with rt.db.read() as session:
        return (
            await session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.hold_id == hold_id, LedgerEntry.kind == "release")
            )
        ).scalar_one()


async def refused_while_closed(rt, person, other) -> None:
    """Another process, whose key cache still has the person's key, is refused all the same
    (a video create too, with the key at its job limit), and writes no row."""
    async with rt.db.write() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == person.key_id).values(active_videos=1000)
        )
        usage_rows = (await session.execute(select(func.count()).select_from(UsageRecord))).scalar()
    image = {"model": "gpt-image-2", "prompt": "p"}
    for response in (
        await other.client.post("/v1/images/generations", json=image, headers=auth(person.key)),
        await other.client.post(
            "/v1/images/generations",
            json=image,
            headers={**auth(person.key), "idempotency-key": "while-closed"},
        ),
        await create(other, person.key),
    ):
        assert response.status_code == 401, response.text
    bad = {"model": "no-such-model", "prompt": "p"}
    # With the key still cached the model is refused; once the cache has let it go (a slow
    # machine), the key is: either way, refused without a row.
    assert (
        await other.client.post("/v1/images/generations", json=bad, headers=auth(person.key))
    ).status_code in (400, 401, 404)
    async with rt.db.read() as session:
        assert (
            await session.execute(select(func.count()).select_from(UsageRecord))
        ).scalar() == usage_rows


async def test_step_up_and_a_typed_confirmation_are_required(people_web, browsers, providers):
    """The password and, two-factor being on, a code from the app (or a backup code), then the
    address typed; anything short of that deletes nothing."""
    alice = await seed_person(people_web, browsers, providers)
    page = await alice.browser.get("/settings/delete")
    assert page.status_code == 200 and 'name="current_password"' in page.text
    assert 'name="code"' in page.text and 'name="backup_code"' in page.text
    assert 'name="confirmation"' in page.text and alice.email in page.text

    wrong_confirmation = await delete_by_page(alice, confirmation="someone@example.com")
    assert wrong_confirmation.status_code == 400
    assert "Type your email address exactly" in wrong_confirmation.text
    no_password = await delete_by_page(alice, password="")
    assert no_password.status_code == 401
    assert 'id="f-current_password-error"' in no_password.text
    wrong_password = await delete_by_page(alice, password="not my password, no")
    assert wrong_password.status_code == 401 and "password is not right" in wrong_password.text
    no_code = await delete_by_page(alice, code="")
    assert no_code.status_code == 400 and 'id="f-code-error"' in no_code.text
    now = alice.clock.now
    valid = {code_at(alice.totp_secret, now + step) for step in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    wrong_code = await delete_by_page(alice, code=wrong)
    assert wrong_code.status_code == 401 and 'id="f-code-error"' in wrong_code.text
    no_csrf = await alice.browser.client.post(
        "/settings/delete",
        data={
            "current_password": PASSWORD,
            "code": alice.fresh_code(),
            "confirmation": alice.email,
        },
    )
    assert no_csrf.status_code == 403

    seeded = await counts(people_web.rt, alice)
    assert [table for table, n in seeded.items() if n == 0] == []
    assert (await people_web.client.get("/v1/credits", headers=auth(alice.key))).status_code == 200
    for _ in range(3):  # wrong passwords count as failed sign-ins: then a pause
        await delete_by_page(alice, password="not my password, no")
    throttled = await delete_by_page(alice)
    assert throttled.status_code == 429 and throttled.headers["retry-after"]
    assert (await people_web.client.get("/v1/credits", headers=auth(alice.key))).status_code == 200


async def test_a_person_without_a_password_steps_up_with_a_recent_sign_in(db_web, browsers, clock):
    rt, email = db_web.rt, "no-password@example.com"
    async with rt.db.write() as session:
        await create_account(session, email, credits_granted=5, now=rt.now())
        user = await users.find_user_by_email(session, email)
    identity = web_context(db_web).identity
    async with rt.db.write() as session:  # the consent page, passed (operator-made)
        await users.insert_consents(session, user.id, identity.config.consents(), rt.now())
    signed_in = await identity.start_session(user, Client("127.0.0.1", "test"))
    browser = browsers(db_web)
    browser.client.cookies.set("reapi_session", signed_in.token)
    page = await browser.get("/settings/delete")
    assert 'name="current_password"' not in page.text
    # What goes with the account, in numbers: its 5 credits are not paid back.
    assert "Your balance of <strong>5 credits</strong> goes with it" in page.text
    assert "You signed in moments ago" in page.text

    clock.advance(11 * 60)  # the sign-in is no longer recent
    page = await browser.get("/settings/delete")
    assert "sign in again" in page.text and "Delete my account</button>" in page.text
    assert "disabled>Delete my account" in page.text
    stale = await browser.submit("/settings/delete", "/settings/delete", {"confirmation": email})
    assert stale.status_code == 401 and "sign in again" in stale.text

    fresh = await identity.start_session(user, Client("127.0.0.1", "test"))
    browser.client.cookies.set("reapi_session", fresh.token)
    done = await browser.submit("/settings/delete", "/settings/delete", {"confirmation": email})
    assert done.status_code == 303
    async with rt.db.read() as session:
        assert await users.find_user_by_email(session, email) is None


async def test_a_person_without_a_password_signs_in_again_with_github(people_web, browsers, clock):
    """Signed up with GitHub, no password, signed in long ago: the page offers "Sign in again
    with GitHub", which comes back to it with a new session, and the deletion goes through."""
    rt = people_web.rt
    browser = browsers(people_web)
    await sign_in_with(browser, "github", ADA_GITHUB)
    assert (await accept_consent(browser)).status_code == 303
    email = "ada@example.com"
    clock.advance(11 * 60)
    page = await browser.get("/settings/delete")
    assert 'name="current_password"' not in page.text
    # No credits (this gateway grants none at sign-up): no line about a balance of 0.
    assert "Your balance of" not in page.text
    assert 'action="/auth/github/reauth"' in page.text and "Sign in again with GitHub" in page.text
    stale = await browser.submit("/settings/delete", "/settings/delete", {"confirmation": email})
    assert stale.status_code == 401 and "sign in again" in stale.text

    authorization = await start_again(browser, "github", "/settings/delete")
    back = await browser.get(local(at_provider(authorization, ADA_GITHUB)))
    assert back.status_code == 303 and back.headers["location"] == "/settings/delete"
    page = await browser.get("/settings/delete")
    assert "You signed in moments ago" in page.text and "Sign in again with" not in page.text
    done = await browser.submit("/settings/delete", "/settings/delete", {"confirmation": email})
    assert done.status_code == 303 and done.headers["location"] == "/login?done=account_deleted"
    assert (await browser.get("/settings")).status_code == 303
    async with rt.db.read() as session:
        assert await users.find_user_by_email(session, email) is None
        assert (
            await session.execute(select(func.count()).select_from(OAuthIdentity))
        ).scalar() == 0
        assert (await session.execute(select(func.count()).select_from(OAuthRequest))).scalar() == 0
    (mail,) = [m for m in await mail_to(rt, email) if "deleted" in m.subject]
    assert mail.subject.endswith("account was deleted")


async def test_the_operator_deletes_through_the_same_service(people_web, browsers, providers):
    rt = people_web.rt
    alice = await seed_person(people_web, browsers, providers)
    args = ["users", "delete", "--email", alice.email, "--yes"]
    args += ["--data-dir", str(people_web.data_dir)]
    if rt.settings.database_url:
        args += ["--database-url", rt.settings.database_url]
    env = {"REAPI_PUBLIC_BASE_URL": BASE, "REAPI_SECRET_KEY": "test-secret"}
    if people_web.s3 is not None:
        server, bucket = people_web.s3
        env.update({f"REAPI_{k.upper()}": str(v) for k, v in server.settings(bucket).items()})
    result = await asyncio.to_thread(CliRunner(env=env).invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert "1 keys revoked, 1 sessions ended, 1 payment records kept" in result.output
    assert f"account {alice.account_id} deleted" in result.output
    assert (await alice.browser.get("/settings")).status_code == 303
    assert objects_of(people_web, alice) == set()
    (mail,) = await mail_to(rt, alice.email)
    assert "account was deleted" in mail.subject
    left = await left_about(rt, alice)
    assert left == {}, f"rows about a deleted person: {left}"
    async with rt.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(UsageRecord))).scalar() == 0
    # The operator's deletion is audited (counts only), and the audit log's rows about the
    # person stay as the operators' record of what they did, detached: no id of hers, no
    # reason typed about her, no address.
    async with rt.db.read() as session:
        about = await audit.about(session, user_id=alice.user_id, account_ids=[alice.account_id])
        assert about == []
        logged = await audit.recent(session, limit=10)
    assert [(e.action, e.via) for e in logged] == [
        ("user.delete", "cli"),
        ("credits.adjust", "cli"),
    ]
    assert json.loads(logged[0].detail)["payments_kept"] == 1
    assert json.loads(logged[1].detail) == {"amount": 50, "about": "a deleted person"}
    for entry in logged:
        assert (entry.account_id, entry.target_user_id) == (None, None)
        assert not any(i in entry.detail for i in (*alice.identifiers, "goodwill"))


async def test_a_disabled_account_is_deleted_by_the_admin_page_and_by_its_owner(
    people_web, browsers, providers
):
    """An admin disabled both accounts (their keys answer 403): the admin deletes one person
    from the admin pages, the other deletes their own account; either way the same service
    runs and nothing about them is left but the audit trail and the detached payment."""
    rt = people_web.rt
    alice = await seed_person(people_web, browsers, providers)
    bob = await seed_person(people_web, browsers, providers)
    admin, admin_email = await signed_in_admin(people_web, browsers)
    admin_id = await user_id_of(people_web, admin_email)
    for person in (alice, bob):
        account = f"/admin/accounts/{person.account_id}"
        assert (await admin.submit(account, f"{account}/disable", {})).status_code == 303
        refused = await people_web.client.get("/v1/credits", headers=auth(person.key))
        assert refused.status_code == 403, refused.text

    page = f"/admin/accounts/{alice.account_id}"
    deleted = await admin.submit(
        page, f"/admin/users/{alice.user_id}/delete", {"confirm_email": alice.email}
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/admin/users?done=user_deleted"
    assert "The person is deleted" in (await admin.get(deleted.headers["location"])).text
    assert (await admin.get(page)).status_code == 404  # the account went with them
    assert (await delete_by_page(bob)).status_code == 303

    for person in (alice, bob):
        assert (await person.browser.get("/settings")).status_code == 303
        answer = await people_web.client.get("/v1/credits", headers=auth(person.key))
        assert answer.status_code == 401
        assert objects_of(people_web, person) == set()
        (mail,) = await mail_to(rt, person.email)  # sent: its outbox row goes
        assert mail.subject.endswith("account was deleted")
        left = await left_about(rt, person)
        assert left == {}, f"rows about a deleted person: {left}"
        async with rt.db.read() as session:
            payment = await session.get(Payment, person.payment_id)
            about = await audit.about(
                session, user_id=person.user_id, account_ids=[person.account_id]
            )
        assert payment.account_id is None and payment.detached_at is not None
        assert about == []  # detached
    # What the admin did stays, with the admin, but about nobody any more.
    async with rt.db.read() as session:
        rows = reversed(await audit.recent(session, limit=20))
    logged = [e for e in rows if e.target_user_id != admin_id]  # but the admin's promotion
    assert [(e.action, e.via) for e in logged] == [
        ("credits.adjust", "cli"),
        ("credits.adjust", "cli"),
        ("account.disable", "web"),
        ("account.disable", "web"),
        ("user.delete", "web"),
    ]
    assert {e.actor_user_id for e in logged if e.via == "web"} == {admin_id}
    for entry in logged:
        assert (entry.account_id, entry.target_user_id) == (None, None)
        assert json.loads(entry.detail)["about"] == "a deleted person"
        assert "goodwill" not in entry.detail
