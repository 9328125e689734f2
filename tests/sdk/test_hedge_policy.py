"""Hedging after a route's observed latency, where the policy allows it, against OpenAI simulators
on real sockets: once the primary's usual time has passed without an answer, the backup starts
too; the first answer wins, the other attempt is cancelled (its connection closed) and shows in
the attempt log as `hedge_lost`. Nothing is hedged that the policy does not name, before the
route's latency is known, or on a video submission."""

from __future__ import annotations

import time

import anyio
import pytest
from tests.conftest import two_host_catalog

from reapi import AsyncReAPI, HedgePolicy, ReAPI, RouterConfig
from reapi.catalog import Catalog, Route
from reapi.router import Router
from reapi.testing import Fault, SimServer, is_png

#: The primary's first-byte deadline: what a request would wait without hedging.
FIRST_BYTE = 30.0
#: The primary's usual generation time in these tests.
USUAL = 0.3
SAMPLES = 5


def slow_catalog() -> Catalog:
    data = two_host_catalog().model_dump(mode="json")
    for model in data["models"].values():
        for route in model["routes"]:
            route["first_byte_timeout"] = FIRST_BYTE
    return Catalog.model_validate(data)


def policy(*allow: str, floor: float = 0.1) -> HedgePolicy:
    return HedgePolicy(allow=frozenset(allow), floor=floor, min_samples=SAMPLES)


def make(sims, hedge: HedgePolicy, cls=AsyncReAPI, **router):
    primary, backup = sims
    return cls(
        catalog=slow_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=FIRST_BYTE, hedge=hedge, **router),
    )


async def warm_up(client: AsyncReAPI, primary: SimServer) -> None:
    """SAMPLES answers from the primary in about USUAL each: its p95 becomes known."""
    primary.faults.set(latency=USUAL)
    for _ in range(SAMPLES):
        result = await client.images.generate(model="gpt-image-2", prompt="p")
        assert result.reapi.provider == "primary"


async def until_no_hang(server: SimServer, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if server.hanging == 0:
            return
        await anyio.sleep(0.02)
    raise AssertionError("the cancelled attempt's connection is still open")


# -- the delay ---------------------------------------------------------------------------------
def test_the_delay_is_the_routes_quantile_with_a_floor_once_enough_is_known():
    route = Route(provider="p", upstream_model="m")
    router = Router(RouterConfig(hedge=HedgePolicy(allow=frozenset({"model"}), floor=2.0)))
    assert router.hedge_delay("model", route) is None  # nothing observed yet
    for seconds in range(1, 21):  # 1 s .. 20 s
        router.record_success(route, float(seconds))
    assert router.hedge_delay("model", route) == 19.0  # p95 of 20, nearest rank
    assert router.hedge_delay("other-model", route) is None  # not allowed
    fast = Route(provider="p", upstream_model="fast")
    for _ in range(20):
        router.record_success(fast, 0.1)
    assert router.hedge_delay("model", fast) == 2.0  # the floor
    by_route = Router(RouterConfig(hedge=HedgePolicy(allow=frozenset({"p/m"}))))
    for seconds in range(1, 21):
        by_route.record_success(route, float(seconds))
    assert by_route.hedge_delay("any-model", route) == 19.0
    fixed = Router(RouterConfig(hedge_after=3.0))
    assert fixed.hedge_delay("any-model", route) == 3.0


def test_a_bad_policy_is_refused():
    with pytest.raises(ValueError, match="quantile"):
        HedgePolicy(quantile=0.0)
    with pytest.raises(ValueError, match="floor"):
        HedgePolicy(floor=-1.0)


# -- hedging on real sockets --------------------------------------------------------------------
async def test_the_hedge_wins_when_the_primary_hangs_and_the_primary_is_cut(sims):
    primary, _ = sims
    client = make(sims, policy("gpt-image-2"))
    await warm_up(client, primary)
    primary.faults.set(Fault.HANG)
    started = time.perf_counter()
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    elapsed = time.perf_counter() - started
    assert result.reapi.provider == "backup" and is_png(result.data[0].content())
    assert USUAL * 0.9 < elapsed < USUAL + 1.0  # not FIRST_BYTE
    assert [(a.provider, a.code) for a in result.reapi.attempt_log] == [
        ("primary", "hedge_lost"),
        ("backup", "ok"),
    ]
    assert len(result.data) == 1  # one result, the winner's
    await until_no_hang(primary)
    await client.aclose()


async def test_the_primary_can_still_win_and_the_hedge_is_cut(sims):
    primary, backup = sims
    client = make(sims, policy("gpt-image-2"))
    await warm_up(client, primary)
    primary.faults.set(latency=USUAL * 2)  # slower than usual, but it answers
    backup.faults.set(Fault.HANG)
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "primary"
    assert [a.code for a in result.reapi.attempt_log] == ["hedge_lost", "ok"]
    assert result.reapi.attempt_log[0].provider == "backup"
    await until_no_hang(backup)
    await client.aclose()


async def test_a_primary_within_its_usual_time_is_not_hedged(sims):
    primary, backup = sims
    client = make(sims, policy("gpt-image-2", floor=1.0))
    await warm_up(client, primary)
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.attempts == 1
    assert backup.app.requests.get("POST /images/generations", 0) == 0
    await client.aclose()


async def test_a_model_the_policy_does_not_name_is_not_hedged(sims):
    primary, backup = sims
    client = make(sims, policy("another-model"))
    await warm_up(client, primary)
    primary.faults.set(Fault.HANG)
    with anyio.move_on_after(USUAL * 5) as waited:
        await client.images.generate(model="gpt-image-2", prompt="p")
    assert waited.cancelled_caught  # still waiting on the primary's 30 s deadline
    assert backup.app.requests.get("POST /images/generations", 0) == 0
    await client.aclose()


async def test_a_route_is_not_hedged_before_its_latency_is_known(sims):
    primary, backup = sims
    client = make(sims, policy("gpt-image-2"))
    primary.faults.set(Fault.HANG)
    with anyio.move_on_after(1.0) as waited:
        await client.images.generate(model="gpt-image-2", prompt="p")
    assert waited.cancelled_caught
    assert backup.app.requests.get("POST /images/generations", 0) == 0
    await client.aclose()


async def test_a_route_key_can_allow_hedging(sims):
    primary, _ = sims
    client = make(sims, policy("primary/gpt-image-2"))
    await warm_up(client, primary)
    primary.faults.set(Fault.HANG)
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    await client.aclose()


async def test_a_video_submission_is_never_hedged(sims):
    """A hedged submission would leave a second task running (and billing) upstream."""
    primary, backup = sims
    client = make(sims, policy("sim-video"), hedge_after=0.05)
    primary.faults.set(latency=0.4)
    video = await client.videos.create(model="sim-video", prompt="p", seconds="4", size="1280x720")
    assert video.reapi.provider == "primary"
    assert backup.app.requests.get("POST /videos", 0) == 0
    await client.aclose()


def test_sync_the_hedge_wins_and_the_loser_is_logged(sims):
    """The sync face cannot cancel a worker thread: the loser's result is dropped when it ends."""
    primary, _ = sims
    client = make(sims, policy("gpt-image-2"), cls=ReAPI)
    primary.faults.set(latency=USUAL)
    for _ in range(SAMPLES):
        client.images.generate(model="gpt-image-2", prompt="p")
    primary.faults.set(latency=5.0)
    started = time.perf_counter()
    result = client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert time.perf_counter() - started < USUAL + 1.0
    assert [a.code for a in result.reapi.attempt_log] == ["hedge_lost", "ok"]
