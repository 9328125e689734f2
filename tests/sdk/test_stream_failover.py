"""Streamed routes against two OpenAI simulators on real sockets: a primary that is slow by
nature (seconds before its image) still fails over in well under a second when it stops
streaming, because its deadline is the silence between events, not the whole answer."""

import time

import pytest
from tests.providers.test_openai_stream import streaming_catalog

from reapi import AsyncReAPI, ReAPI, RouterConfig
from reapi.catalog import Catalog
from reapi.testing import Fault, is_png

IDLE = 0.5
#: What a route that is not streamed would wait: the whole generation.
FIRST_BYTE = 30.0


def catalog(partial_images: int = 2) -> Catalog:
    data = streaming_catalog(partial_images).model_dump(mode="json")
    for route in data["models"]["gpt-image-2"]["routes"]:
        route["stream_idle_timeout"] = IDLE
        route["first_byte_timeout"] = FIRST_BYTE
    return Catalog.model_validate(data)


def make(sims, cls=ReAPI, partial_images: int = 2):
    primary, backup = sims
    return cls(
        catalog=catalog(partial_images),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=FIRST_BYTE),
    )


def test_a_slow_healthy_primary_streams_its_image_past_the_idle_deadline(sims):
    """1.2 s of generation, events every 0.4 s: longer than the idle deadline in all, never
    silent for as long."""
    primary, _ = sims
    primary.faults.set(latency=1.2)
    started = time.perf_counter()
    result = make(sims).images.generate(model="gpt-image-2", prompt="p")
    assert time.perf_counter() - started >= 1.2
    assert result.reapi.provider == "primary" and is_png(result.data[0].content())


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.HANG_FIRST_EVENT])
def test_a_primary_hung_before_its_first_event_fails_over_within_the_idle_deadline(sims, fault):
    primary, _ = sims
    primary.faults.set(fault, latency=20.0)  # 20 s of generation when healthy
    client = make(sims)
    started = time.perf_counter()
    result = client.images.generate(model="gpt-image-2", prompt="p")
    elapsed = time.perf_counter() - started
    assert result.reapi.provider == "backup"
    assert IDLE <= elapsed < IDLE + 1.0
    assert [a.code for a in result.reapi.attempt_log] == ["upstream_timeout", "ok"]


async def test_async_a_primary_hung_before_its_first_event_fails_over_fast(sims):
    primary, _ = sims
    primary.faults.set(Fault.HANG_FIRST_EVENT, latency=20.0)
    client = make(sims, AsyncReAPI)
    started = time.perf_counter()
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert time.perf_counter() - started < IDLE + 1.0
    await client.aclose()


@pytest.mark.parametrize("cls", [ReAPI, AsyncReAPI])
async def test_a_primary_hung_mid_stream_after_its_partials_fails_over(sims, cls):
    """Events every 0.3 s: both partial images arrive, then the stream goes silent."""
    primary, backup = sims
    primary.faults.set(Fault.HANG_MID_STREAM, latency=0.9)
    client = make(sims, cls)
    started = time.perf_counter()
    result = client.images.generate(model="gpt-image-2", prompt="p")
    if cls is AsyncReAPI:
        result = await result
    elapsed = time.perf_counter() - started
    assert result.reapi.provider == "backup"
    assert 0.6 + IDLE <= elapsed < 0.6 + IDLE + 1.0
    assert primary.app.requests["POST /images/generations"] == 1
    assert backup.app.requests["POST /images/generations"] == 1
    if cls is AsyncReAPI:
        await client.aclose()
    else:
        client.close()


def test_a_reset_mid_stream_fails_over_at_once(sims):
    primary, _ = sims
    primary.faults.set(Fault.RESET_MID_STREAM)
    result = make(sims).images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_unreachable"


def test_a_generation_failing_mid_stream_fails_over(sims):
    primary, _ = sims
    primary.app.faults.set(Fault.TASK_FAILS)
    result = make(sims).images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_server_error"


def test_the_streamed_image_is_the_one_the_plain_route_returns(sims):
    primary, backup = sims
    streamed = make(sims).images.generate(model="gpt-image-2", prompt="p", size="1536x1024")
    plain = ReAPI(
        catalog=Catalog.model_validate(
            {
                **catalog().model_dump(mode="json"),
                "models": {
                    "gpt-image-2": {
                        **catalog().models["gpt-image-2"].model_dump(mode="json"),
                        "routes": [{"provider": "primary", "upstream_model": "gpt-image-2"}],
                    }
                },
            }
        ),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
    ).images.generate(model="gpt-image-2", prompt="p", size="1536x1024")
    fields = {"created", "reapi"}
    assert streamed.model_dump(exclude=fields) == plain.model_dump(exclude=fields)
