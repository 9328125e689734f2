"""`videos.wait(timeout=...)` bounds the whole wait, a hung poll included (`APITimeoutError`,
`code="wait_timeout"`), as docs/sdk.md says. Each poll had its own first-byte deadline (a
route's, or the gateway's 600 s) and up to three tries: `wait(timeout=1)` on a provider that
stopped answering took 90 s in-process and ended with the poll's `upstream_timeout`."""

import time

import anyio
import pytest

from reapi import APITimeoutError, AsyncReAPI, ReAPI, RouterConfig
from reapi.testing import Fault, OpenAISimulator, SimServer

#: Each poll may wait this long for a first byte: far longer than the waits below.
SLOW_POLLS = RouterConfig(first_byte_timeout=30.0)


def _in_process(sim, catalog, cls=ReAPI):
    return cls(
        catalog=catalog,
        provider_keys={"primary": "sk-sim"},
        provider_base_urls={"primary": sim.base_url + "/v1"},
        router=SLOW_POLLS,
    )


def test_a_hung_poll_ends_at_the_waits_deadline(catalog):
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=50)) as sim:
        with _in_process(sim, catalog) as client:
            video = client.videos.create(model="sim-video", prompt="waves", seconds=4)
            sim.faults.set(Fault.HANG)
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as info:
                client.videos.wait(video.id, timeout=0.5, poll_interval=0.05)
    assert info.value.code == "wait_timeout"
    assert time.monotonic() - started < 5


async def test_an_async_hung_poll_ends_at_the_waits_deadline(catalog):
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=50)) as sim:
        async with _in_process(sim, catalog, AsyncReAPI) as client:
            video = await client.videos.create(model="sim-video", prompt="waves", seconds=4)
            sim.faults.set(Fault.HANG)
            with anyio.fail_after(5), pytest.raises(APITimeoutError) as info:
                await client.videos.wait(video.id, timeout=0.5, poll_interval=0.05)
    assert info.value.code == "wait_timeout"


def test_a_hung_gateway_poll_ends_at_the_waits_deadline():
    """A gateway without an events route (the simulator answers 404) is polled; its polls
    waited 600 s each."""
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=50)) as sim:
        with ReAPI(base_url=sim.base_url + "/v1", api_key="sk-sim") as client:
            video = client.videos.create(model="sora-2", prompt="waves", seconds=4)
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as info:
                # The first poll is answered; every request after it hangs.
                client.videos.wait(
                    video.id,
                    timeout=1.0,
                    poll_interval=0.05,
                    on_progress=lambda _: sim.faults.set(Fault.HANG),
                )
    assert info.value.code == "wait_timeout"
    assert time.monotonic() - started < 6
