"""Per-key limits on /v1: a spend limit per period (in the statement that holds the credit),
a model allowlist, an expiry, requests per minute, concurrent videos; a disabled account.

Every limit is exercised with raw HTTP and with the official openai client. Where the guarantee
depends on the database it runs on SQLite and on PostgreSQL (`db_gateway`)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import httpx
import openai
import pytest
from sqlalchemy import select, text, update
from tests.server.helpers import auth, ledger_matches
from tests.server.live import free_port
from tests.server.other_process import OtherProcess
from tests.server.served import served_gateway
from tests.server.test_credits import PRICE
from tests.server.test_openai_client import client_for
from tests.server.test_videos import create as create_video
from tests.server.test_videos import drive

from reapi_server.accounts.service import create_account
from reapi_server.api_keys.limits import KeyLimits
from reapi_server.api_keys.service import keys_service
from reapi_server.credits import repository as credit_rows
from reapi_server.models import Account, ApiKey, CreditHold, UsageRecord

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

VIDEO_COST = 40  # sim-video, 4 seconds


def at(moment: str) -> float:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def limited(gateway, *, credits: int = 100_000, **limits) -> tuple[str, str, str]:
    """(account id, key, key id) of a new account whose key has `limits`."""
    rt = gateway.rt
    async with rt.db.write() as session:
        account = await create_account(
            session,
            f"limits-{id(limits)}-{rt.now()}@example.com",
            credits_granted=credits,
            now=rt.now(),
        )
    created = await keys_service(rt).create(account.id, name="limited", limits=KeyLimits(**limits))
    return account.id, created.plaintext, created.view.id


async def generate(gateway, key: str, model: str = "gpt-image-2"):
    return await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p", "model": model}, headers=auth(key)
    )


async def counter(gateway, key_id: str) -> tuple[int, float]:
    """(period_spend, period_start) as stored."""
    async with gateway.rt.db.read() as session:
        row = (
            await session.execute(
                select(ApiKey.period_spend, ApiKey.period_start).where(ApiKey.id == key_id)
            )
        ).one()
    return int(row[0]), float(row[1])


def error_of(response) -> dict:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


# -- spend limit ---------------------------------------------------------------------------------


async def test_fifty_concurrent_requests_against_a_limit_allowing_five(db_gateway):
    gateway = db_gateway
    account, key, key_id = await limited(gateway, spend_limit=5 * PRICE, spend_period="never")

    statuses = await asyncio.gather(*(generate(gateway, key) for _ in range(50)))
    codes = [r.status_code for r in statuses]
    assert codes.count(200) == 5, codes
    refused = [r for r in statuses if r.status_code != 200]
    assert {r.status_code for r in refused} == {402}
    assert {error_of(r)["code"] for r in refused} == {"key_spend_limit_reached"}
    assert {error_of(r)["type"] for r in refused} == {"insufficient_quota"}
    assert await counter(gateway, key_id) == (5 * PRICE, 0.0)
    # The account had plenty: only the key's limit refused.
    assert await ledger_matches(gateway.rt, account) == (100_000 - 5 * PRICE, 0)
    async with gateway.rt.db.read() as session:
        rows = (
            await session.execute(
                select(UsageRecord.status, UsageRecord.error_code).where(
                    UsageRecord.api_key_id == key_id
                )
            )
        ).all()
    assert sorted(map(tuple, rows), key=str) == sorted(
        [("succeeded", None)] * 5 + [("failed", "key_spend_limit_reached")] * 45, key=str
    )


async def test_spend_limit_with_the_openai_client(gateway):
    _, key, _ = await limited(gateway, spend_limit=PRICE, spend_period="monthly")
    client = client_for(gateway, key)
    await client.images.generate(model="gpt-image-2", prompt="a lighthouse")
    with pytest.raises(openai.APIStatusError) as refused:
        await client.images.generate(model="gpt-image-2", prompt="a lighthouse")
    assert refused.value.status_code == 402
    assert refused.value.code == "key_spend_limit_reached"
    assert "resets at" in refused.value.message


async def test_a_failed_request_gives_its_hold_back_to_the_key(gateway):
    _, key, key_id = await limited(gateway, spend_limit=PRICE, spend_period="daily")
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    assert (await generate(gateway, key)).status_code == 502
    assert (await counter(gateway, key_id))[0] == 0
    gateway.upstream.faults = {}
    assert (await generate(gateway, key)).status_code == 200
    assert (await counter(gateway, key_id))[0] == PRICE


async def test_a_limit_lowered_applies_to_the_next_hold_in_every_process(gateway):
    _, key, key_id = await limited(gateway, spend_limit=10 * PRICE)
    assert (await generate(gateway, key)).status_code == 200
    # Straight to the row, as another process's edit would be: no cache to clear here.
    async with gateway.rt.db.write() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(spend_limit=PRICE))
    response = await generate(gateway, key)
    assert response.status_code == 402 and error_of(response)["code"] == "key_spend_limit_reached"


async def test_the_period_resets_and_an_old_hold_never_touches_the_new_one(db_gateway):
    """A video held in March, settled in April: April's counter keeps only April's spend."""
    gateway = db_gateway
    clock = Clock(at("2027-03-31T23:50:00"))
    gateway.rt.clock = clock
    _, key, key_id = await limited(gateway, spend_limit=VIDEO_COST + PRICE, spend_period="monthly")
    assert (await create_video(gateway, key)).status_code == 200  # held: 40 in March
    assert (await generate(gateway, key)).status_code == 200  # 40 more: the limit
    assert error_of(await generate(gateway, key))["code"] == "key_spend_limit_reached"
    assert await counter(gateway, key_id) == (VIDEO_COST + PRICE, at("2027-03-01T00:00:00"))

    clock.now = at("2027-04-01T00:00:05")  # a new month
    assert (await generate(gateway, key)).status_code == 200
    assert await counter(gateway, key_id) == (PRICE, at("2027-04-01T00:00:00"))

    # The March video finishes now and is charged: April's counter is not March's.
    await drive(gateway)
    async with gateway.rt.db.read() as session:
        statuses = (await session.execute(select(CreditHold.status))).scalars().all()
    assert "held" not in statuses
    assert await counter(gateway, key_id) == (PRICE, at("2027-04-01T00:00:00"))
    # ... and one more April request fits (40 + 40 of 80).
    assert (await generate(gateway, key)).status_code == 200
    assert error_of(await generate(gateway, key))["code"] == "key_spend_limit_reached"


async def _held(rt, account, principal, request_id):
    """A hold of PRICE on the key's spend, made through the group committer as a request's."""

    async def hold(tx):
        return await credit_rows.reserve(
            tx,
            account,
            PRICE,
            purpose="image",
            request_id=request_id,
            expires_at=None,
            now=rt.now(),
            key=principal.spend(rt.now()),
        )

    return await rt.db.grouped(hold, account=account)


async def _daily_key_before_midnight(gateway):
    """A key with a daily spend limit, a minute before its period resets: (the gateway's clock,
    the account, the key, its id, the key's principal)."""
    clock = Clock(at("2027-06-30T23:59:00"))
    gateway.rt.clock = clock
    account, key, key_id = await limited(gateway, spend_limit=10 * PRICE, spend_period="daily")
    principal = await gateway.rt.auth.authenticate(f"Bearer {key}")
    return clock, account, key, key_id, principal


async def test_a_hold_released_after_the_reset_gives_nothing_to_the_new_period(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    clock, account, key, key_id, principal = await _daily_key_before_midnight(gateway)
    old = await _held(rt, account, principal, "req_old")
    assert await counter(gateway, key_id) == (PRICE, at("2027-06-30T00:00:00"))
    clock.now = at("2027-07-01T08:00:00")
    assert (await generate(gateway, key)).status_code == 200
    async with rt.db.write() as session:
        await rt.db.lock_accounts(session, account)
        await credit_rows.release(session, old, rt.now())
    assert await counter(gateway, key_id) == (PRICE, at("2027-07-01T00:00:00"))
    assert await ledger_matches(rt, account) == (100_000 - PRICE, 0)


async def test_a_hold_closed_after_the_reset_reports_no_spend_of_its_period(db_gateway):
    """What the closing statement reads back of the key's counter (the spend alerts watch it):
    the spend of the hold's own period, or none once the counter has moved on to a later one,
    never the new period's counter."""
    gateway = db_gateway
    rt = gateway.rt
    clock, account, key, _, principal = await _daily_key_before_midnight(gateway)

    async def release(hold_id):
        async def op(tx):
            return await credit_rows.release(tx, hold_id, rt.now())

        return await rt.db.grouped(op, account=account)

    same = await _held(rt, account, principal, "req_same")
    old = await _held(rt, account, principal, "req_old")
    closed = await release(same)
    assert closed is not None and closed.key_spend == PRICE  # `old` is still held in its period
    clock.now = at("2027-07-01T08:00:00")
    assert (await generate(gateway, key)).status_code == 200  # the counter's new period
    closed = await release(old)
    assert closed is not None and closed.key_id is not None and closed.key_spend is None


# -- allowlist, expiry, revocation ---------------------------------------------------------------


async def test_model_allowlist(gateway):
    account, key, _ = await limited(gateway, models=("sim-video",))
    response = await generate(gateway, key, model="gpt-image-2")
    assert response.status_code == 403
    assert error_of(response)["code"] == "model_not_allowed"
    assert error_of(response)["param"] == "model"
    assert (await create_video(gateway, key)).status_code == 200
    listed = (await gateway.client.get("/v1/models", headers=auth(key))).json()["data"]
    assert [m["id"] for m in listed] == ["sim-video"]
    hidden = await gateway.client.get("/v1/models/gpt-image-2", headers=auth(key))
    assert hidden.status_code == 404
    # Nothing was held for the refused request, and its usage row says why.
    assert await ledger_matches(gateway.rt, account) == (100_000 - VIDEO_COST, VIDEO_COST)
    async with gateway.rt.db.read() as session:
        codes = (
            await session.execute(
                select(UsageRecord.error_code).where(UsageRecord.account_id == account)
            )
        ).scalars()
        assert sorted(c or "" for c in codes) == ["", "model_not_allowed"]

    client = client_for(gateway, key)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client.images.generate(model="gpt-image-2", prompt="x")
    assert refused.value.code == "model_not_allowed"
    assert [m.id for m in (await client.models.list()).data] == ["sim-video"]


async def test_a_video_key_may_be_refused_images_and_an_image_key_videos(gateway):
    _, key, _ = await limited(gateway, models=("gpt-image-2",))
    refused = await create_video(gateway, key)
    assert refused.status_code == 403 and error_of(refused)["code"] == "model_not_allowed"
    assert (await generate(gateway, key)).status_code == 200


async def _narrow_key(gateway, account: str, model: str) -> str:
    created = await keys_service(gateway.rt).create(
        account, name="narrow", limits=KeyLimits(models=(model,))
    )
    return created.plaintext


@pytest.mark.parametrize(
    ("path", "body", "narrow_to"),
    [
        ("/v1/images/generations", {"prompt": "p", "model": "gpt-image-2"}, "sim-video"),
        ("/v1/videos", {"model": "sim-video", "prompt": "w", "size": "1280x720"}, "gpt-image-2"),
    ],
)
async def test_an_idempotent_replay_is_refused_to_a_key_not_allowed_the_model(
    gateway, path, body, narrow_to
):
    """Idempotency records are the account's: a key limited to other models must not get, by
    reusing another key's Idempotency-Key, what that key made with a model it may not call."""
    account, wide, _ = await limited(gateway)
    narrow = await _narrow_key(gateway, account, narrow_to)
    once = {"idempotency-key": "shared"}
    first = await gateway.client.post(path, json=body, headers={**auth(wide), **once})
    assert first.status_code == 200, first.text
    again = await gateway.client.post(path, json=body, headers={**auth(narrow), **once})
    assert again.status_code == 403, again.text
    assert error_of(again)["code"] == "model_not_allowed"
    assert "idempotent-replayed" not in again.headers
    # The wide key still gets its replay.
    replayed = await gateway.client.post(path, json=body, headers={**auth(wide), **once})
    assert replayed.headers.get("idempotent-replayed") == "true", replayed.text


async def test_expiry(gateway):
    clock = Clock(at("2027-01-01T00:00:00"))
    gateway.rt.clock = clock
    _, key, _ = await limited(gateway, expires_at=at("2027-02-01T00:00:00"))
    assert (await generate(gateway, key)).status_code == 200
    clock.now = at("2027-02-01T00:00:00")
    for response in (
        await generate(gateway, key),
        await gateway.client.get("/v1/models", headers=auth(key)),
        await create_video(gateway, key),
    ):
        assert response.status_code == 403, response.text
        assert error_of(response)["code"] == "key_expired"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client_for(gateway, key).images.generate(model="gpt-image-2", prompt="x")
    assert refused.value.code == "key_expired"


async def test_the_hold_refuses_a_key_expired_or_revoked_since_it_was_cached(gateway):
    """The authenticator's cache may still hold the key: the hold's statement does not."""
    clock = Clock(at("2027-01-01T00:00:00"))
    gateway.rt.clock = clock
    _, key, key_id = await limited(gateway)
    assert (await generate(gateway, key)).status_code == 200  # cached now
    async with gateway.rt.db.write() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(expires_at=clock.now + 10)
        )
    clock.now += 20
    principal = await gateway.rt.auth.authenticate(f"Bearer {key}")
    assert principal.expires_at is None  # still the cached copy
    # The dependency passes the cached key; the hold refuses it.
    response = await generate(gateway, key)
    assert response.status_code == 403 and error_of(response)["code"] == "key_expired"
    async with gateway.rt.db.write() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(expires_at=None, revoked_at=1.0)
        )
    response = await generate(gateway, key)
    assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"


# -- disabled accounts ---------------------------------------------------------------------------


async def test_a_disabled_account_is_refused_at_once_in_another_process(db_gateway):
    gateway = db_gateway
    account, key, _ = await limited(gateway)
    async with OtherProcess(gateway) as other:
        warm = await other.request(
            "POST",
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(key),
        )
        assert warm.status_code == 200  # the other process has the key cached now
        async with gateway.rt.db.write() as session:
            await session.execute(
                update(Account).where(Account.id == account).values(disabled_at=gateway.rt.now())
            )
        image = await other.request(
            "POST",
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(key),
        )
        assert image.status_code == 403 and error_of(image)["code"] == "account_disabled"
        video = await other.request(
            "POST",
            "/v1/videos",
            json={"model": "sim-video", "prompt": "a wave", "size": "1280x720"},
            headers=auth(key),
        )
        assert video.status_code == 403 and error_of(video)["code"] == "account_disabled"
    # This process looks the key up afresh: every /v1 call is refused.
    gateway.rt.auth.forget_all()
    listed = await gateway.client.get("/v1/models", headers=auth(key))
    assert listed.status_code == 403 and error_of(listed)["code"] == "account_disabled"
    assert await ledger_matches(gateway.rt, account) == (100_000 - PRICE, 0)


# -- requests per minute, concurrent videos --------------------------------------------------------


async def test_requests_per_minute(gateway):
    _, key, _ = await limited(gateway, requests_per_minute=2)
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 200
    assert (await generate(gateway, key)).status_code == 200
    refused = await generate(gateway, key)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    _, other_key, _ = await limited(gateway, requests_per_minute=1)
    client = client_for(gateway, other_key)
    await client.models.list()
    with pytest.raises(openai.RateLimitError) as limited_error:
        await client.models.list()
    assert int(limited_error.value.response.headers["retry-after"]) >= 1


async def test_concurrent_videos(gateway):
    _, key, _ = await limited(gateway, max_concurrent_videos=1)
    assert (await create_video(gateway, key)).status_code == 200
    refused = await create_video(gateway, key)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert error_of(refused)["code"] == "too_many_concurrent_jobs"
    with pytest.raises(openai.RateLimitError):
        await client_for(gateway, key).videos.create(
            model="sim-video", prompt="waves", seconds="4", size="1280x720"
        )
    await drive(gateway)
    assert (await create_video(gateway, key)).status_code == 200


# -- management keys -----------------------------------------------------------------------------


async def test_v1_refuses_management_keys(gateway):
    account, _, _ = await limited(gateway)
    created = await keys_service(gateway.rt).create(account, name="ops", kind="management")
    assert created.plaintext.startswith("rk_mgmt_")
    for response in (
        await gateway.client.get("/v1/models", headers=auth(created.plaintext)),
        await generate(gateway, created.plaintext),
    ):
        assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await client_for(gateway, created.plaintext).images.generate(
            model="gpt-image-2", prompt="x"
        )
    async with gateway.rt.db.read() as session:
        count = (await session.execute(text("SELECT count(*) FROM credit_holds"))).scalar()
    assert count == 0


def test_a_disabled_account_is_refused_at_once_by_a_served_gateway(tmp_path):
    """`reapi-server serve` as a real process: it looked the key up before the account was
    disabled (by another process, straight in the database); its next create is refused."""
    data_dir = tmp_path / "data"
    # No provider is reachable: a request the hold let through would fail, not leave the host.
    dead = {"REAPI_PROVIDER_BASE_URLS": f'{{"openai": "http://127.0.0.1:{free_port()}/v1"}}'}
    with served_gateway(data_dir, env=dead) as served:
        headers = auth(served.key)
        assert httpx.get(f"{served.base_url}/v1/models", headers=headers).status_code == 200
        with sqlite3.connect(data_dir / "reapi.db") as connection:
            connection.execute("UPDATE accounts SET disabled_at = 1")
        refused = httpx.post(
            f"{served.base_url}/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=headers,
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "account_disabled"
        client = openai.OpenAI(base_url=f"{served.base_url}/v1", api_key=served.key, max_retries=0)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.images.generate(model="gpt-image-2", prompt="p")
        assert denied.value.code == "account_disabled"
        client.close()


async def test_limits_stored_before_stay_while_others_change(gateway):
    """A model the catalog no longer has, an expiry that has passed since: changing another
    limit keeps them; setting them anew is refused."""
    from reapi_server.api_keys.limits import LimitsInvalid
    from reapi_server.api_keys.service import ApiKeys

    clock = Clock(at("2027-01-01T00:00:00"))
    gateway.rt.clock = clock
    account, _, key_id = await limited(
        gateway, models=("sim-video",), expires_at=at("2027-02-01T00:00:00")
    )
    clock.now = at("2027-03-01T00:00:00")
    shrunk = ApiKeys(gateway.rt.db, known_models={"gpt-image-2"}, clock=clock)
    view = await shrunk.update(account, key_id, {"requests_per_minute": 5})
    assert view.limits.models == ("sim-video",) and view.limits.requests_per_minute == 5
    assert view.limits.expires_at == at("2027-02-01T00:00:00") and view.expired
    with pytest.raises(LimitsInvalid) as refused:
        await shrunk.update(account, key_id, {"models": ("sim-video",)})
    assert refused.value.param == "models"
    with pytest.raises(LimitsInvalid) as refused:
        await shrunk.update(account, key_id, {"expires_at": at("2027-02-15T00:00:00")})
    assert refused.value.param == "expires_at"
