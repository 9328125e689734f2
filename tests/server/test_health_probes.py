"""The gateway runs health probes with its background tasks: a hung primary's breaker opens from
probes while the request that met the hang is still waiting, later requests go straight to the
backup, and the probes show in /metrics. `health_probes = false` turns them off."""

from __future__ import annotations

import time

import anyio
from tests.sdk.test_health_probes import until_state
from tests.server.helpers import auth, scrape_metrics

from reapi.router import BreakerState

PROBES = {
    "run_background_tasks": True,
    "health_probe_interval": 0.05,
    "health_probe_timeout": 0.1,
}


async def generate(gateway, key):
    body = {"model": "gpt-image-2", "prompt": "a lighthouse"}
    return await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))


def primary(gateway):
    return gateway.rt.catalog.models["gpt-image-2"].routes[0]


async def test_probes_open_a_hung_primarys_breaker_and_show_in_metrics(make_gateway):
    gateway = await make_gateway(**PROBES)
    _, key = await gateway.account()
    assert (await generate(gateway, key)).json()["reapi"]["provider"] == "primary"
    gateway.upstream.faults["primary.test"] = "hang"
    gateway.upstream.hang_seconds = 30.0
    await until_state(gateway.rt.router, primary(gateway), BreakerState.OPEN, seconds=5.0)
    started = time.perf_counter()
    answer = await generate(gateway, key)
    assert answer.json()["reapi"]["provider"] == "backup"
    assert answer.json()["reapi"]["attempts"] == 1  # the primary was skipped, not waited on
    assert time.perf_counter() - started < 0.3
    metrics = await scrape_metrics(gateway)
    assert 'reapi_health_probes_total{provider="primary",verdict="down"}' in metrics
    assert (
        'reapi_health_probe_breaker_changes_total{change="opened",provider="primary"} 1.0'
        in metrics
    )
    probes = [c for c in gateway.upstream.calls if c[1] == "GET" and "/models/" in c[2]]
    assert probes and all(path == "/v1/models/gpt-image-2" for _, _, path in probes)


async def test_probes_can_be_switched_off(make_gateway):
    gateway = await make_gateway(**PROBES, health_probes=False)
    _, key = await gateway.account()
    await generate(gateway, key)
    await anyio.sleep(0.3)
    assert not [c for c in gateway.upstream.calls if c[1] == "GET"]
    assert "reapi_health_probes_total{" not in await scrape_metrics(gateway)


async def test_no_traffic_no_probes(make_gateway):
    gateway = await make_gateway(**PROBES)
    await anyio.sleep(0.3)
    assert gateway.upstream.calls == []
