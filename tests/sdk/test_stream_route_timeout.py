"""In-process, the caller's `timeout` bounds every wait for a byte of a route's answer, a
streamed one's too. gpt-image-2's OpenAI route streams one image with a 60 s idle deadline
(catalog `stream_idle_timeout`), which replaced the caller's timeout: `timeout=0.3` waited 60 s
on a hung OpenAI. openai-python's `timeout` bounds each silence of a stream the same way."""

import time

import anyio
import pytest

from reapi import AsyncReAPI, NoRouteAvailableError, ReAPI
from reapi.testing import Fault, OpenAISimulator, SimServer


def _options(sim) -> dict:
    return {
        "provider_keys": {"openai": "sk-sim"},
        "provider_base_urls": {"openai": sim.base_url + "/v1"},
    }


def test_the_client_timeout_bounds_a_hung_stream():
    with SimServer(OpenAISimulator("sk-sim")) as sim, ReAPI(timeout=0.3, **_options(sim)) as c:
        sim.faults.set(Fault.HANG)
        started = time.monotonic()
        with pytest.raises(NoRouteAvailableError) as info:
            c.images.generate(model="gpt-image-2", prompt="a fox")
        assert time.monotonic() - started < 10
        assert info.value.attempts[0].code == "upstream_timeout"
        sim.faults.set(Fault.NONE)
        # A stream that answers is served as before, its partial images within the bound.
        assert c.images.generate(model="gpt-image-2", prompt="a fox").data[0].content()


async def test_a_per_call_timeout_bounds_a_hung_stream():
    with SimServer(OpenAISimulator("sk-sim")) as sim:
        async with AsyncReAPI(**_options(sim)) as client:
            sim.faults.set(Fault.HANG)
            with anyio.fail_after(10), pytest.raises(NoRouteAvailableError) as info:
                await client.images.generate(model="gpt-image-2", prompt="a fox", timeout=0.3)
    assert info.value.attempts[0].code == "upstream_timeout"


def test_without_a_timeout_the_routes_idle_deadline_holds():
    """No caller timeout: the route's own deadlines, as before (the catalog's 60 s)."""
    client = ReAPI(provider_keys={"openai": "sk-x"})
    route = client._setup.core.catalog.models["gpt-image-2"].routes[0]
    call = client.images._call()
    assert client.images._bounded((route,), call)[0].stream_idle_timeout == 60
    bounded = client.images._bounded((route,), client.images._call(timeout=5))[0]
    assert bounded.stream_idle_timeout == 5 and bounded.key == route.key
