"""Active health probes against OpenAI simulators on real sockets: a primary that goes hung, down
(refused) or failing (503) has its breaker opened by probes within seconds, so the next request
goes to the backup without waiting out the primary's deadline; once it answers again, the
breaker a probe opened closes. A breaker that traffic opened is not closed by a probe."""

from __future__ import annotations

import json
import threading
import time

import anyio
import pytest
from tests.conftest import two_host_catalog

from reapi import AsyncReAPI, RouterConfig
from reapi._probes import HealthProber, ProbeConfig, ProbeReport, ProbeVerdict, probe_targets
from reapi.catalog import Catalog
from reapi.router import BreakerState
from reapi.testing import Fault, FaultState

#: What the primary's route waits for a first byte: the shipped gpt-image-2 route's 180 s stands
#: behind it; the tests only need it long enough that waiting it out would show.
FIRST_BYTE = 30.0
#: Probes' deadline: what finds a hung provider, and long enough that a loaded machine's slow
#: answer is not taken for an outage (0.3 s failed a recovery's probe in a loaded run).
FAST = ProbeConfig(interval=0.1, timeout=1.0, recheck=0.1)


def slow_catalog() -> Catalog:
    data = two_host_catalog().model_dump(mode="json")
    for route in data["models"]["gpt-image-2"]["routes"]:
        route["first_byte_timeout"] = FIRST_BYTE
    return Catalog.model_validate(data)


@pytest.fixture
async def client(sims):
    primary, backup = sims
    client = AsyncReAPI(
        catalog=slow_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=FIRST_BYTE),
    )
    yield client
    await client.aclose()


def prober(client: AsyncReAPI, config: ProbeConfig = FAST, reports=None) -> HealthProber:
    on_probe = reports.append if reports is not None else None
    return HealthProber(client._setup.core, client._engine, config, on_probe=on_probe)


def primary_route(client: AsyncReAPI):
    return client._setup.core.catalog.models["gpt-image-2"].routes[0]


async def until_state(router, route, state: BreakerState, *, seconds: float) -> None:
    for _ in range(int(seconds / 0.02)):
        if router.state(route) is state:
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"the breaker did not become {state} within {seconds} s")


def target_of(probes: HealthProber, provider: str):
    return next(t for t in probes.targets if t.provider == provider)


# -- what a probe is --------------------------------------------------------------------------
def test_each_probed_provider_has_a_cheap_authenticated_read_and_no_caller_data():
    from reapi._local import LocalCore
    from reapi._settings import resolve_connections
    from reapi.catalog import default_catalog

    catalog = default_catalog()
    keys = {name: f"key-{name}" for name in catalog.providers}
    core = LocalCore(catalog, resolve_connections(catalog, keys, {}))
    targets = probe_targets(core)
    calls = {(t.provider, t.request.method, t.request.url.split("/", 3)[3]) for t in targets}
    assert calls == {
        ("openai", "GET", "v1/models/gpt-image-2"),
        ("gemini", "GET", "v1beta/models/gemini-3-pro-image-preview"),
        ("gemini", "GET", "v1beta/models/gemini-3.1-flash-image-preview"),
        ("gemini", "GET", "v1beta/models/gemini-2.5-flash-image"),
        ("gemini", "GET", "v1beta/models/veo-3.1-generate-preview"),
        ("byteplus", "GET", "api/v3/contents/generations/tasks?page_num=1&page_size=1"),
        ("xai", "GET", "v1/models"),
        ("replicate", "GET", "v1/account"),
    }
    # One probe serves every route of a provider whose probe names no model.
    assert len(target_of_provider(targets, "replicate").routes) > 1
    for target in targets:
        request = target.request
        assert request.purpose == "probe"
        assert request.json is None and request.content is None
        assert not request.data and not request.files
        assert set(request.safe_headers().values()) == {"[secret]"}


def target_of_provider(targets, provider):
    return next(t for t in targets if t.provider == provider)


async def test_a_probe_is_a_get_with_the_key_alone(sims, client):
    primary, _ = sims
    report = await prober(client).check(target_of(prober(client), "primary"))
    assert report.verdict is ProbeVerdict.UP
    assert primary.app.requests == {"GET /models/{model}": 1}
    headers = primary.app.last_request_headers
    assert headers["authorization"] == "Bearer sk-sim"
    assert "content-length" not in headers or headers["content-length"] == "0"


async def test_a_probe_with_a_refused_key_or_an_unknown_path_is_unclear(sims, client):
    primary, _ = sims
    primary.app.api_key = "sk-other"  # 401 on every call
    probes = prober(client)
    report = await probes.check(target_of(probes, "primary"))
    assert report.verdict is ProbeVerdict.UNCLEAR
    assert client._engine.router.state(primary_route(client)) is BreakerState.CLOSED


# -- outages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [Fault.HANG, Fault.REFUSE, Fault.RESET, Fault.ERROR_503])
async def test_two_probes_in_a_row_that_find_the_provider_down_open_its_breaker(
    sims, client, fault
):
    primary, _ = sims
    reports: list[ProbeReport] = []
    # A hung provider is found by the probe's deadline (FAST's); the others answer or refuse at
    # once, so a longer deadline costs them nothing.
    config = FAST if fault is Fault.HANG else ProbeConfig(interval=0.1, timeout=5.0, recheck=0.1)
    probes = prober(client, config, reports=reports)
    target = target_of(probes, "primary")
    router = client._engine.router
    primary.faults.set(fault, latency=30.0)  # 30 s of generation when healthy
    first = await probes.check(target)
    assert first.verdict is ProbeVerdict.DOWN and first.opened == ()
    assert router.state(primary_route(client)) is BreakerState.CLOSED  # one is not an outage
    second = await probes.check(target)
    assert second.opened == ("primary/gpt-image-2",)
    assert router.state(primary_route(client)) is BreakerState.OPEN
    # Each probe ends by its deadline, never waits the primary's 30 s.
    assert all(r.seconds < config.timeout + 1.0 for r in reports)

    # The next request skips the primary: no attempt on it, so no wait for its 30 s deadline
    # (the bound leaves room for a loaded machine; the attempt log is the exact check).
    started = time.perf_counter()
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert [a.provider for a in result.reapi.attempt_log] == ["backup"]
    assert time.perf_counter() - started < 5.0
    assert primary.app.requests.get("POST /images/generations", 0) == 0

    # Back up: the breaker a probe opened closes at the next probe.
    primary.faults.clear()
    back = await probes.check(target)
    assert back.verdict is ProbeVerdict.UP and back.closed == ("primary/gpt-image-2",)
    assert router.state(primary_route(client)) is BreakerState.CLOSED
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "primary"


async def test_a_probe_does_not_wait_for_generation_time(sims, client):
    """The simulator's latency stands in for generation: a model read does not meet it."""
    primary, _ = sims
    primary.faults.set(latency=30.0)
    probes = prober(client)
    report = await probes.check(target_of(probes, "primary"))
    assert report.verdict is ProbeVerdict.UP and report.seconds < FAST.timeout


async def test_a_probe_does_not_use_up_a_fault_meant_for_the_next_request(sims, client):
    primary, _ = sims
    primary.faults.set(Fault.ERROR_500, count=1)
    probes = prober(client)
    assert (await probes.check(target_of(probes, "primary"))).verdict is ProbeVerdict.DOWN
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert [a.code for a in result.reapi.attempt_log] == ["upstream_server_error", "ok"]


async def test_a_breaker_opened_by_traffic_is_not_closed_by_a_probe(sims, client):
    primary, _ = sims
    primary.faults.set(Fault.RESET, count=1)  # a generation call reset: traffic opens it
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    router = client._engine.router
    assert router.state(primary_route(client)) is BreakerState.OPEN
    probes = prober(client)
    report = await probes.check(target_of(probes, "primary"))
    assert report.verdict is ProbeVerdict.UP and report.closed == ()
    assert router.state(primary_route(client)) is BreakerState.OPEN


async def test_probes_keep_a_breaker_traffic_opened_open_while_the_provider_stays_down(
    sims, client
):
    """Without probes the half-open trial after the open period is a caller's request, which
    waits out the route's deadline; probes that still fail keep the route benched instead."""
    primary, _ = sims
    primary.faults.set(Fault.RESET)
    await client.images.generate(model="gpt-image-2", prompt="p")
    router = client._engine.router
    breakers = router.breakers
    opened_until = breakers.opened_until("primary/gpt-image-2")
    probes = prober(client)
    target = target_of(probes, "primary")
    for _ in range(2):
        await probes.check(target)
    assert breakers.opened_until("primary/gpt-image-2") > opened_until


# -- when probes run --------------------------------------------------------------------------
async def test_probes_run_only_while_a_route_has_traffic_or_an_open_breaker(sims, client):
    probes = prober(client, ProbeConfig(traffic_window=0.5))
    target = target_of(probes, "primary")
    assert not probes.watched(target)  # no request yet
    await client.images.generate(model="gpt-image-2", prompt="p")
    assert probes.watched(target)
    assert not probes.watched(target_of(probes, "backup"))  # no request went there
    await anyio.sleep(0.6)
    assert not probes.watched(target)
    client._engine.router.probe_failed(primary_route(client))
    assert probes.watched(target)


async def test_running_probes_open_and_close_the_breaker_on_their_own(sims, client):
    """The loop: traffic flows, the primary hangs, the breaker opens within a few probe
    intervals (only the request in flight waits), then the primary comes back and it closes."""
    primary, _ = sims
    reports: list[ProbeReport] = []
    probes = prober(client, reports=reports)
    router = client._engine.router
    route = primary_route(client)
    async with anyio.create_task_group() as group:
        group.start_soon(probes.run)
        await client.images.generate(model="gpt-image-2", prompt="p")  # traffic
        primary.faults.set(Fault.HANG)
        await until_state(router, route, BreakerState.OPEN, seconds=10.0)
        primary.faults.clear()
        await until_state(router, route, BreakerState.CLOSED, seconds=10.0)
        group.cancel_scope.cancel()
    verdicts = [r.verdict for r in reports if r.provider == "primary"]
    assert ProbeVerdict.DOWN in verdicts and verdicts[-1] is ProbeVerdict.UP
    assert json.dumps([r.provider for r in reports])  # metadata only


def test_probes_can_be_pointed_at_nothing():
    """A catalog whose providers document no probe call (fal) has no targets."""
    from reapi._local import LocalCore
    from reapi._settings import resolve_connections
    from reapi.catalog import default_catalog

    catalog = default_catalog()
    core = LocalCore(catalog, resolve_connections(catalog, {"fal": "k", "topaz": "k"}, {}))
    assert probe_targets(core) == []


async def test_a_request_sent_before_the_probes_found_the_outage_does_not_close_the_breaker(
    sims, client, monkeypatch
):
    """Answers already on their way when the provider stopped answering new calls (a stream
    that began earlier) say nothing about it now: they must not undo what the probes found."""
    primary, _ = sims
    primary.faults.set(latency=1.5)
    arrived = threading.Event()  # the request read by the primary, its fault state taken
    take = primary.faults.take

    def taken() -> FaultState:
        state = take()
        arrived.set()
        return state

    monkeypatch.setattr(primary.faults, "take", taken)
    probes = prober(client)
    target = target_of(probes, "primary")
    router = client._engine.router
    results = []

    async def one() -> None:
        results.append(await client.images.generate(model="gpt-image-2", prompt="p"))

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        # The request is at the primary (a loaded machine may take more than a moment), its
        # answer 1.5 s away; only then does the primary stop answering new calls.
        assert await anyio.to_thread.run_sync(arrived.wait, 10)
        primary.faults.set(Fault.HANG)
        for _ in range(2):
            await probes.check(target)
        assert router.state(primary_route(client)) is BreakerState.OPEN
    assert results[0].reapi.provider == "primary"
    assert router.state(primary_route(client)) is BreakerState.OPEN
