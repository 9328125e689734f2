"""A request waiting on an Idempotency-Key that another instance is running is woken through
Redis when that request's answer is recorded, instead of finding out at its next read (reads
back off to once a second)."""

import asyncio
import time

import pytest
from tests.server.redis import redis_server, redis_settings  # noqa: F401  (fixtures)

from reapi_server.idempotency import service

pytestmark = pytest.mark.redis


async def test_a_waiter_on_another_instance_is_woken_at_once(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first = await make_gateway(**redis_settings)
    second = await make_gateway(
        database_url=first.rt.settings.resolved_database_url, **redis_settings
    )
    account, _ = await first.account()
    await asyncio.sleep(0.3)  # both buses subscribed
    lags = []
    for index in range(3):
        key = f"k-{index}"
        claim = await service.begin(first.rt, account, key, "fp", wait_seconds=5)
        assert isinstance(claim, service.Claim)
        waiter = asyncio.create_task(service.begin(second.rt, account, key, "fp", wait_seconds=30))
        await asyncio.sleep(1.6)  # the waiter's reads have backed off to about once a second
        await service.finish(first.rt, claim, 200, {"n": index})
        finished = time.monotonic()
        replay = await waiter
        lags.append(time.monotonic() - finished)
        assert isinstance(replay, service.Replay) and replay.snapshot == {"n": index}
    assert max(lags) < 0.25, lags
