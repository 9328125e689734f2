"""Wake-ups across the fleet: a waiter on one instance is woken by a notification on another
through Redis pub/sub; without Redis (or while it is down) it wakes at its timeout instead."""

import asyncio
import time

import pytest
from tests.server.redis import redis_server, redis_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis


async def _pair(make_gateway, **settings):
    first = await make_gateway(**settings)
    second = await make_gateway(database_url=first.rt.settings.resolved_database_url, **settings)
    return first, second


async def _subscribed(gateway) -> None:
    """Until the instance listens (its bus subscribes in the background at start)."""
    deadline = time.monotonic() + 5
    while True:
        received = asyncio.create_task(gateway.rt.wakeups.wait("probe", 0.2))
        await asyncio.sleep(0.01)
        gateway.rt.wakeups.notify("probe")  # local: wakes at once; we want the bus too
        await received
        channels = await gateway.rt.redis.client.pubsub_numsub(gateway.rt.bus.channel("wake"))
        if channels and channels[0][1] >= 1:
            return
        assert time.monotonic() < deadline, "never subscribed"
        await asyncio.sleep(0.05)


async def test_a_notification_on_one_instance_wakes_a_waiter_on_another(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first, second = await _pair(make_gateway, **redis_settings)
    await _subscribed(second)
    started = time.monotonic()
    waiter = asyncio.create_task(second.rt.wakeups.wait("job-1", 10.0))
    await asyncio.sleep(0.05)
    first.rt.wakeups.notify("job-1")
    assert await waiter is True
    assert time.monotonic() - started < 2.0
    assert await second.rt.wakeups.wait("job-2", 0.2) is False  # other topics sleep on


async def test_without_redis_only_this_process_is_woken(make_gateway):
    first, second = await _pair(make_gateway)
    here = asyncio.create_task(first.rt.wakeups.wait("job-1", 5.0))
    there = asyncio.create_task(second.rt.wakeups.wait("job-1", 0.5))
    await asyncio.sleep(0.05)
    first.rt.wakeups.notify("job-1")
    assert await here is True
    assert await there is False
