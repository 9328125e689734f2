"""Circuit breakers shared through Redis: a route one instance found failing is skipped by the
others from their first request, an instance that starts later learns it too, and a route that
closes again closes everywhere."""

import asyncio
import time

import pytest
from tests.server.redis import redis_server, redis_settings  # noqa: F401  (fixtures)
from tests.server.test_images import generate

from reapi.router import BreakerState

pytestmark = pytest.mark.redis


def _primary(gateway):
    return gateway.rt.catalog.models["gpt-image-2"].routes[0]


async def _until_state(gateway, state: BreakerState, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while gateway.rt.router.state(_primary(gateway)) is not state:
        assert time.monotonic() < deadline, f"never {state}"
        await asyncio.sleep(0.02)


async def test_a_route_opened_on_one_instance_is_skipped_by_the_others(
    make_gateway,
    upstream,
    redis_settings,  # noqa: F811
):
    first = await make_gateway(**redis_settings)
    second = await make_gateway(
        database_url=first.rt.settings.resolved_database_url, **redis_settings
    )
    _, key = await first.account()
    upstream.faults["primary.test"] = "reset"  # unreachable: its breaker opens at once
    assert (await generate(first, key)).status_code == 200  # failed over to the backup
    assert upstream.count("/images/generations", host="primary.test") == 1
    await _until_state(second, BreakerState.OPEN)
    answer = await generate(second, key)
    assert answer.status_code == 200
    # the second instance's first request went straight to the backup
    assert upstream.count("/images/generations", host="primary.test") == 1
    assert upstream.count("/images/generations", host="backup.test") == 2

    later = await make_gateway(
        database_url=first.rt.settings.resolved_database_url, **redis_settings
    )
    await _until_state(later, BreakerState.OPEN)

    first.rt.router.record_success(_primary(first))  # it answered a probe: closed again
    await _until_state(second, BreakerState.CLOSED)
    await _until_state(later, BreakerState.CLOSED)


async def test_without_redis_each_instance_learns_alone(make_gateway, upstream):
    first = await make_gateway()
    second = await make_gateway(database_url=first.rt.settings.resolved_database_url)
    _, key = await first.account()
    upstream.faults["primary.test"] = "reset"
    assert (await generate(first, key)).status_code == 200
    assert second.rt.router.state(_primary(second)) is BreakerState.CLOSED
    assert (await generate(second, key)).status_code == 200
    assert upstream.count("/images/generations", host="primary.test") == 2
