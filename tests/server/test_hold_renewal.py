"""An image request that runs longer than `image_hold_seconds` keeps its credit hold: its process
renews it, so the sweeper never takes it for abandoned and the images are charged once. A hold
nobody renews (its process died) is still released."""

import asyncio

import httpx
from sqlalchemy import select
from tests.conftest import two_host_catalog
from tests.server.helpers import auth, ledger_matches

from reapi_server.credits import repository as credit_rows
from reapi_server.idempotency import repository as idempotency_rows
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import CreditHold, IdempotencyRecord

PRICE = 40


def slow_catalog():
    """gpt-image-2 with a first-byte deadline long enough for a slow (not broken) upstream."""
    catalog = two_host_catalog()
    spec = catalog.models["gpt-image-2"]
    routes = [r.model_copy(update={"first_byte_timeout": 10.0}) for r in spec.routes]
    catalog.models["gpt-image-2"] = spec.model_copy(update={"routes": routes})
    return catalog


async def _dead_hold(rt, account: str, expires_in: float) -> str:
    """The hold of a request whose process died: nobody will settle or renew it."""
    async with rt.db.write() as session:
        return await credit_rows.reserve(
            session,
            account,
            PRICE,
            purpose="image",
            request_id="req_dead",
            expires_at=rt.now() + expires_in,
            now=rt.now(),
        )


async def _status(rt, hold_id: str) -> str:
    async with rt.db.read() as session:
        return (
            await session.execute(select(CreditHold.status).where(CreditHold.id == hold_id))
        ).scalar_one()


async def outlasting_the_hold_window_case(make_gateway, **settings) -> None:
    gateway = await make_gateway(
        **settings,
        catalog=slow_catalog(),
        run_background_tasks=True,  # the sweeper runs every 50 ms, as it would in production
        image_hold_seconds=0.6,
        sweep_interval=0.05,
        poll_interval=0.5,
    )
    account, key = await gateway.account(credits=1000)
    dead = await _dead_hold(gateway.rt, account, 0.6)
    gateway.upstream.faults = {"primary.test": "hang"}
    gateway.upstream.hang_seconds = 1.5  # two and a half hold windows
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["reapi"]["provider"] == "primary"
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert (usage["status"], usage["credit_cost"]) == ("succeeded", PRICE)
    assert await _status(gateway.rt, dead) == "released"  # the dead process's hold still goes
    assert await ledger_matches(gateway.rt, account) == (1000 - PRICE, 0)


async def test_the_sweeper_releases_only_a_hold_still_expired(gateway, monkeypatch):
    """The sweeper read a hold as expired; its request renewed it before the release: the
    release must not happen (it is conditional on the expiry, not only on the status)."""
    account, _ = await gateway.account(credits=1000)
    rt = gateway.rt
    hold = await _dead_hold(rt, account, -1)
    read = credit_rows.stale_holds

    async def stale_then_renewed(session, now, *args, **kwargs):
        stale = await read(session, now, *args, **kwargs)
        async with rt.db.write() as other:
            await credit_rows.renew_holds(other, [hold], now + 60)
        return stale

    monkeypatch.setattr(credit_rows, "stale_holds", stale_then_renewed)
    report = await sweep_once(rt)
    assert report.holds_released == 0 and await _status(rt, hold) == "held"
    assert await ledger_matches(rt, account) == (1000 - PRICE, PRICE)


async def test_a_request_outlasting_its_hold_window_is_charged_once(make_gateway):
    await outlasting_the_hold_window_case(make_gateway)


async def test_an_idempotency_key_outlasting_the_hold_window_is_kept(database_url, make_gateway):
    """The sweeper dropped an `in_progress` idempotency record once older than
    `image_hold_seconds`: a request running longer than that (its hold renewed) lost its key,
    and a retry with the key ran again and was charged a second time."""
    gateway = await make_gateway(
        database_url=database_url,
        catalog=slow_catalog(),
        run_background_tasks=True,
        image_hold_seconds=1.2,  # renewed with 0.8 s left: room for a loaded machine
        sweep_interval=0.05,
        poll_interval=0.5,
    )
    account, key = await gateway.account(credits=1000)
    gateway.upstream.faults = {"primary.test": "hang"}
    gateway.upstream.hang_seconds = 3.0  # two and a half hold windows

    async def generate() -> httpx.Response:
        return await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p"},
            headers={**auth(key), "idempotency-key": "long-running"},
        )

    first = asyncio.create_task(generate())
    await asyncio.sleep(2.0)  # past the window: the sweeper has run many times
    retried = await generate()
    answered = await first
    assert answered.status_code == 200, answered.text
    assert retried.status_code == 200, retried.text
    assert retried.headers.get("idempotent-replayed") == "true"
    assert retried.json()["data"] == answered.json()["data"]
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert [(u["status"], u["credit_cost"]) for u in usage] == [("succeeded", PRICE)]
    assert await ledger_matches(gateway.rt, account) == (1000 - PRICE, 0)


async def test_the_sweeper_drops_only_records_nobody_keeps_alive(gateway):
    """An in-progress record goes once its `alive_until` is past (its process died), however
    recent; one its process keeps pushing back stays, however old."""
    rt = gateway.rt
    account, _ = await gateway.account()
    now, window = rt.now(), rt.settings.image_hold_seconds
    async with rt.db.write() as session:
        dead = await idempotency_rows.claim(session, account, "dead", "f", now, now + 3600, now - 1)
        old = now - 10 * window
        alive = await idempotency_rows.claim(session, account, "alive", "f", old, now + 3600, old)
        assert await idempotency_rows.renew(session, [alive], now + window) == [alive]
    report = await sweep_once(rt)
    assert report.idempotency_dropped == 1
    async with rt.db.read() as session:
        left = (await session.execute(select(IdempotencyRecord.id))).scalars().all()
    assert left == [alive] and dead != alive
