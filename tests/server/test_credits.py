"""Credits: one conditional UPDATE reserves, settle/release happen exactly once, the balance never
goes below zero and always equals the ledger sum."""

import asyncio

import pytest
from tests.server.helpers import auth, ledger_matches

from reapi_server.credits import repository as credit_rows
from reapi_server.jobs.sweeper import sweep_once

PRICE = 40  # gpt-image-2 in the test catalog


async def hammer(gateway, key: str, count: int) -> list[int]:
    async def one() -> int:
        response = await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(key),
        )
        return response.status_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def concurrent_spend(gateway) -> None:
    account, key = await gateway.account(credits=10 * PRICE)
    statuses = await hammer(gateway, key, 50)
    assert 1 <= statuses.count(200) <= 10
    assert set(statuses) <= {200, 402}
    balance, reserved = await ledger_matches(gateway.rt, account)
    assert balance == (10 - statuses.count(200)) * PRICE and balance >= 0 and reserved == 0
    usage = (await gateway.client.get("/v1/usage?limit=100", headers=auth(key))).json()["data"]
    assert len(usage) == 50
    assert sum(row["credit_cost"] for row in usage) == statuses.count(200) * PRICE


async def test_fifty_concurrent_requests_never_overdraw(gateway):
    await concurrent_spend(gateway)


async def test_failed_generation_costs_nothing(gateway):
    account, key = await gateway.account(credits=1000)
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 502
    assert await ledger_matches(gateway.rt, account) == (1000, 0)


async def test_settle_and_release_happen_once(gateway):
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt
    async with rt.db.write() as session:
        hold = await credit_rows.reserve(
            session, account, 60, purpose="image", request_id="r1", expires_at=None, now=1.0
        )
        assert (
            await credit_rows.reserve(
                session, account, 60, purpose="image", request_id="r2", expires_at=None, now=1.0
            )
            is None
        )
    async with rt.db.write() as session:
        closed = await credit_rows.settle(session, hold, 500, now=2.0)  # more than held
        assert closed.charged == 60
        assert await credit_rows.release(session, hold, now=2.0) is None
        assert await credit_rows.settle(session, hold, 10, now=2.0) is None
    assert await ledger_matches(rt, account) == (40, 0)


async def test_negative_usage_never_mints_credit(gateway):
    account, _ = await gateway.account(credits=100)
    async with gateway.rt.db.write() as session:
        hold = await credit_rows.reserve(
            session, account, 50, purpose="image", request_id="r", expires_at=None, now=1.0
        )
        closed = await credit_rows.settle(session, hold, -1000, now=2.0)
    assert closed.charged == 0
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_stale_holds_are_released_once_even_with_two_sweepers(gateway, make_gateway):
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt
    async with rt.db.write() as session:  # a request whose process died mid-generation
        await credit_rows.reserve(
            session,
            account,
            40,
            purpose="image",
            request_id="dead",
            expires_at=rt.now() - 1,
            now=rt.now(),
        )
    reports = await asyncio.gather(sweep_once(rt), sweep_once(rt), sweep_once(rt))
    assert sum(r.holds_released for r in reports) == 1
    assert await ledger_matches(rt, account) == (100, 0)


@pytest.mark.parametrize("fault", ["reset", "hang", "truncated", "slow_body"])
async def test_upstream_faults_release_the_hold(gateway, fault):
    account, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": fault, "backup.test": fault}
    gateway.upstream.hang_seconds = 2.0
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == (504 if fault in ("hang", "slow_body") else 502)
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert gateway.stored() == {}


async def test_two_processes_on_one_sqlite_file_queue_instead_of_failing(gateway, make_gateway):
    """Two gateways (separate engines, as separate processes would have) share the SQLite file:
    writers queue on BEGIN IMMEDIATE + busy_timeout, none fails with "database is locked"."""
    other = await make_gateway(database_url=gateway.rt.settings.resolved_database_url)
    account, key = await gateway.account(credits=10 * PRICE)
    first, second = await asyncio.gather(hammer(gateway, key, 25), hammer(other, key, 25))
    statuses = first + second
    assert set(statuses) <= {200, 402} and 1 <= statuses.count(200) <= 10
    balance, reserved = await ledger_matches(gateway.rt, account)
    assert balance == (10 - statuses.count(200)) * PRICE and reserved == 0


async def test_input_images_are_charged_where_the_maker_bills_them(make_gateway):
    """xAI bills each input image of an edit; the catalog's `per_input_image` passes it on."""
    from tests.conftest import two_host_catalog
    from tests.server.test_images import PNG

    from reapi.catalog import Catalog, default_catalog

    assert default_catalog().models["grok-imagine-1.0"].price.per_input_image == 20
    data = two_host_catalog().model_dump(mode="json", exclude_unset=True)
    data["models"]["gpt-image-2"]["price"]["per_input_image"] = 5
    gateway = await make_gateway(catalog=Catalog.model_validate(data))
    account, key = await gateway.account(credits=1000)
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "add a moon"},
        files=[("image[]", ("a.png", PNG, "image/png")), ("image[]", ("b.png", PNG, "image/png"))],
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert usage[0]["credit_cost"] == PRICE + 2 * 5
    assert await ledger_matches(gateway.rt, account) == (1000 - PRICE - 10, 0)
