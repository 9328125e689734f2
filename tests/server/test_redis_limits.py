"""Rate limits for the fleet: with Redis (`redis_url`) a key's and an account's limits hold
across every instance, both checked in one round trip; with Redis down each instance falls back
to its own in-process limits, says so in /readyz and a metric, and keeps serving."""

import asyncio
import time

import pytest
from tests.server.fault_proxy import FaultProxy
from tests.server.helpers import auth, scrape_metrics
from tests.server.redis import redis_server, redis_settings  # noqa: F401  (fixtures)

from reapi_server.api_keys.service import issue_key

pytestmark = pytest.mark.redis


async def _two_instances(make_gateway, **settings):
    first = await make_gateway(**settings)
    second = await make_gateway(database_url=first.rt.settings.resolved_database_url, **settings)
    return first, second


async def _statuses(gateways, key: str, count: int) -> list[int]:
    answers = []
    for index in range(count):
        gateway = gateways[index % len(gateways)]
        answers.append(await gateway.client.get("/v1/credits", headers=auth(key)))
    return [a.status_code for a in answers]


async def test_a_keys_limit_holds_across_instances(make_gateway, redis_settings):  # noqa: F811
    first, second = await _two_instances(make_gateway, requests_per_minute=10, **redis_settings)
    _, key = await first.account()
    statuses = await _statuses([first, second], key, 14)
    assert statuses == [200] * 10 + [429] * 4
    refused = await second.client.get("/v1/credits", headers=auth(key))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 7  # one request's share of a minute


async def test_without_redis_each_instance_counts_alone(make_gateway):
    first, second = await _two_instances(make_gateway, requests_per_minute=10)
    _, key = await first.account()
    assert (await _statuses([first, second], key, 20)).count(200) == 20


async def test_an_accounts_limit_spans_its_keys_and_instances(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first, second = await _two_instances(
        make_gateway, requests_per_minute=100, account_requests_per_minute=6, **redis_settings
    )
    account, key = await first.account()
    async with first.rt.db.write() as session:
        _, other = await issue_key(session, account, now=first.rt.now())
    statuses = await _statuses([first, second], key, 4)
    statuses += await _statuses([second, first], other.plaintext, 4)
    assert statuses == [200] * 6 + [429] * 2
    refused = await first.client.get("/v1/credits", headers=auth(other.plaintext))
    assert "account" in refused.json()["error"]["message"]


async def test_account_limit_without_redis_is_per_process(make_gateway):
    gateway = await make_gateway(account_requests_per_minute=3)
    _, key = await gateway.account()
    assert await _statuses([gateway], key, 5) == [200] * 3 + [429] * 2


async def _until(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_redis_down_falls_back_to_per_process_limits(
    make_gateway,
    redis_server,  # noqa: F811
    redis_settings,  # noqa: F811
):
    # A killed Redis refuses at once: the fixture's generous timeout keeps a slow machine's
    # replies from counting as an outage (and against the fallback's buckets) before the halt.
    first, second = await _two_instances(make_gateway, requests_per_minute=4, **redis_settings)
    _, key = await first.account()
    ready = await first.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"
    assert await _statuses([first, second], key, 4) == [200] * 4
    redis_server.halt()
    try:
        # Serving goes on: each instance now has a limit of its own (4 each, a fresh count).
        statuses = await _statuses([first, second], key, 10)
        assert statuses.count(200) == 8, statuses
        ready = await first.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["redis"] == "unavailable: per-process fallback"
        metrics = await scrape_metrics(first)
        assert "reapi_redis_up 0.0" in metrics
        assert 'reapi_redis_fallbacks_total{feature="rate_limit"}' in metrics
    finally:
        redis_server.start()

    async def redis_back() -> bool:
        return (await first.client.get("/readyz")).json()["redis"] == "ok"

    await _until(redis_back)
    assert "reapi_redis_up 1.0" in await scrape_metrics(first)


async def test_a_blackholed_redis_costs_one_timeout_then_serving_goes_on(
    make_gateway,
    redis_server,  # noqa: F811
    redis_settings,  # noqa: F811
):
    """A Redis that answers nothing (a partition): the request that finds out waits one
    `redis_timeout`; later ones do not wait at all until Redis answers again."""
    proxy = FaultProxy(redis_server.port)
    try:
        settings = {
            **redis_settings,
            "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
            "redis_timeout": 0.3,
        }
        gateway = await make_gateway(requests_per_minute=1000, **settings)
        _, key = await gateway.account()
        assert await _statuses([gateway], key, 3) == [200] * 3
        proxy.blackhole()
        started = time.monotonic()
        assert await _statuses([gateway], key, 1) == [200]
        assert time.monotonic() - started < 2
        started = time.monotonic()
        assert await _statuses([gateway], key, 20) == [200] * 20
        assert time.monotonic() - started < 2  # no Redis wait per request
        ready = (await gateway.client.get("/readyz")).json()
        assert ready["redis"] == "unavailable: per-process fallback"
        proxy.heal()

        async def redis_back() -> bool:
            return (await gateway.client.get("/readyz")).json()["redis"] == "ok"

        await _until(redis_back)
    finally:
        proxy.close()


async def test_a_limit_too_high_to_reach(make_gateway, redis_settings):  # noqa: F811
    """A per-request share of a minute below Redis's clock resolution (a benchmark's 10^9 a
    minute) must still count, not fail the script (a zero expiry) and every request with it."""
    gateway = await make_gateway(requests_per_minute=10**9, **redis_settings)
    _, key = await gateway.account()
    assert await _statuses([gateway], key, 20) == [200] * 20


async def test_a_failing_redis_command_falls_back_too(make_gateway, redis_settings):  # noqa: F811
    """Redis answers, with an error (here a key of another type where the limit's is): the
    request is limited in this process, not failed."""
    gateway = await make_gateway(requests_per_minute=3, **redis_settings)
    _, key = await gateway.account()
    principal = await gateway.rt.auth.authenticate(f"Bearer {key}")
    await gateway.rt.redis.client.rpush(gateway.rt.redis.key("rate", f"key:{principal.key_id}"), 1)
    assert await _statuses([gateway], key, 5) == [200] * 3 + [429] * 2
    assert (await gateway.client.get("/readyz")).json()["redis"] == "ok"  # it is up
