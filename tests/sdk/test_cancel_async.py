"""A task cancelled mid-request (asyncio's `wait_for`/`timeout`, anyio's `move_on_after`) leaves
an `AsyncReAPI` as it found it: the next call works, `close()` returns, the routes it held are
given back (a half-open probe too), hedged attempts are cancelled with their connections
closed, and nothing is reported as "Task exception was never retrieved"."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import anyio
import pytest
from tests.sdk.test_hedge_policy import slow_catalog, until_no_hang

from reapi import AsyncReAPI, RouterConfig
from reapi.testing import Fault

ROUTES = slow_catalog().models["gpt-image-2"].routes


def client(sims, **router) -> AsyncReAPI:
    primary, backup = sims
    return AsyncReAPI(
        catalog=slow_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=30.0, **router),
        max_retries=0,
    )


def half_open(reapi: AsyncReAPI) -> None:
    """The primary failed lately: its next request is the half-open probe."""
    reapi.router.breakers.record_failure(
        ROUTES[0].key, time.monotonic(), open_for=0.01, threshold=1
    )
    time.sleep(0.02)


async def wait_for(call):
    await asyncio.wait_for(call, 0.3)


async def asyncio_timeout(call):
    async with asyncio.timeout(0.3):
        await call


async def move_on_after(call):
    with anyio.move_on_after(0.3) as scope:
        await call
    assert scope.cancelled_caught
    raise TimeoutError  # as the others end


@pytest.mark.parametrize("cancel", [wait_for, asyncio_timeout, move_on_after])
@pytest.mark.parametrize("hedged", [False, True], ids=["plain", "hedged"])
async def test_a_cancelled_call_leaves_the_client_usable(sims, cancel, hedged):
    primary, backup = sims
    unretrieved: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: unretrieved.append(context)
    )
    reapi = client(sims, **({"hedge_after": 0.05} if hedged else {}))
    half_open(reapi)
    primary.faults.set(Fault.HANG)
    backup.faults.set(Fault.HANG)
    with pytest.raises(TimeoutError):
        await cancel(reapi.images.generate(model="gpt-image-2", prompt="p"))
    await until_no_hang(primary)  # the cancelled attempts' connections are closed
    await until_no_hang(backup)
    primary.faults.clear()
    backup.faults.clear()
    served = await reapi.images.generate(model="gpt-image-2", prompt="p")
    assert served.reapi.provider == "primary"  # the probe was given back
    with anyio.fail_after(5):
        await reapi.close()
    gc.collect()
    await asyncio.sleep(0)
    assert unretrieved == []


async def test_a_stream_cancelled_mid_event_leaves_the_client_usable(sims):
    from tests.sdk.test_stream_failover import make

    primary, backup = sims
    unretrieved: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: unretrieved.append(context)
    )
    reapi = make(sims, AsyncReAPI)
    primary.faults.set(Fault.HANG_MID_STREAM, latency=0.9)  # partials at 0.3 s and 0.6 s
    backup.faults.set(Fault.HANG)
    events = []
    with anyio.move_on_after(0.8) as scope:  # mid-stream, before the idle deadline
        stream = await reapi.images.generate(
            model="gpt-image-2", prompt="p", stream=True, partial_images=2
        )
        async for event in stream:
            events.append(event.type)
    assert scope.cancelled_caught
    await until_no_hang(primary)  # its connection is closed
    primary.faults.clear()
    backup.faults.clear()
    stream = await reapi.images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=2
    )
    assert [e.type async for e in stream][-1] == "image_generation.completed"
    with anyio.fail_after(5):
        await reapi.aclose()
    gc.collect()
    await asyncio.sleep(0)
    assert unretrieved == []


@pytest.mark.parametrize("cancelled", [False, True], ids=["answered", "cancelled"])
async def test_a_hedged_call_leaves_nothing_unclosed(sims, cancelled):
    """Before: every hedged call left its two result streams unclosed (a `ResourceWarning`
    each, as they were collected)."""
    primary, backup = sims
    reapi = client(sims, hedge_after=0.05)
    if cancelled:
        primary.faults.set(Fault.HANG)
        backup.faults.set(Fault.HANG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with anyio.move_on_after(0.3):
            await reapi.images.generate(model="gpt-image-2", prompt="p")
        gc.collect()
    await reapi.close()
    assert [str(w.message) for w in seen if w.category is ResourceWarning] == []
