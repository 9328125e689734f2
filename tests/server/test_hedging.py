"""Hedging in the gateway (`hedge_models`), on real sockets through the aiohttp engine: a primary
that hangs past its usual time is hedged to the backup, the caller gets one image and is charged
for one, the usage says how many upstream attempts it took, the primary's connection is closed,
and /metrics counts the hedge."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from types import SimpleNamespace

import anyio
import httpx
import pytest
from tests.conftest import two_host_catalog
from tests.server.conftest import GATEWAY, settings_for
from tests.server.helpers import auth, ledger_matches, make_account, scrape_metrics

from reapi.testing import (
    SIMULATOR_KEY,
    Fault,
    OpenAISimulator,
    RunningSimulators,
    SimulatorSpec,
    run_simulators,
)
from reapi_server.app import create_app
from reapi_server.config import ConfigError
from reapi_server.upstream_h1 import H1Transport

USUAL = 0.3
SAMPLES = 3
PRICE = 40  # credits of one gpt-image-2 image at the default size


@pytest.fixture
def sims() -> Iterator[RunningSimulators]:
    running = run_simulators(
        {
            "primary": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1"),
            "backup": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1"),
        }
    )
    yield running
    running.stop()


def hedging_settings(tmp_path, migrated_template, sims, **overrides):
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    shutil.copy(migrated_template, data_dir / "reapi.db")
    values = {
        "provider_keys": {"primary": SIMULATOR_KEY, "backup": SIMULATOR_KEY},
        "provider_base_urls": sims.provider_urls,
        "upstream_client": "h1",  # the loser's cancel closes its socket
        "first_byte_timeout": 30.0,
        "hedge_models": ["gpt-image-2"],
        "hedge_floor_seconds": 0.1,
        "hedge_min_samples": SAMPLES,
        **overrides,
    }
    return settings_for(data_dir, **values)


@pytest.fixture
async def gateway(tmp_path, migrated_template, sims):
    settings = hedging_settings(tmp_path, migrated_template, sims)
    app = create_app(settings, catalog=two_host_catalog(), migrate=False)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY)
    yield client, app
    await client.aclose()
    await lifespan.__aexit__(None, None, None)


async def test_a_hung_primary_is_hedged_and_one_image_is_charged(gateway, sims):
    client, app = gateway
    rt = app.state.runtime
    assert isinstance(rt.engine.transport.inner, H1Transport)  # behind `result_urls`
    account, key = await make_account(rt, credits=1000)
    primary = sims.servers["primary"]

    async def generate() -> httpx.Response:
        body = {"model": "gpt-image-2", "prompt": "a lighthouse"}
        return await client.post("/v1/images/generations", json=body, headers=auth(key))

    primary.faults.set(latency=USUAL)
    for _ in range(SAMPLES):
        assert (await generate()).json()["reapi"]["provider"] == "primary"
    primary.faults.set(Fault.HANG)
    started = time.perf_counter()
    answer = await generate()
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["data"]) == 1
    assert body["reapi"]["provider"] == "backup" and body["reapi"]["attempts"] == 2
    assert [a["code"] for a in body["reapi"]["attempt_log"]] == ["hedge_lost", "ok"]
    assert elapsed < USUAL + 1.0
    # Charged once, for the one image delivered; nothing left on hold.
    assert await ledger_matches(rt, account) == (1000 - (SAMPLES + 1) * PRICE, 0)
    usage = (await client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert len(usage) == SAMPLES + 1
    # The primary's hung exchange ended: the gateway closed that connection.
    for _ in range(100):
        if primary.hanging == 0:
            break
        await anyio.sleep(0.02)
    assert primary.hanging == 0
    metrics = await scrape_metrics(SimpleNamespace(rt=rt, app=app))
    assert 'reapi_hedged_requests_total{model="gpt-image-2"} 1.0' in metrics
    assert 'reapi_upstream_attempts_total{code="hedge_lost",provider="primary"} 1.0' in metrics
    assert 'reapi_failovers_total{model="gpt-image-2"}' not in metrics


def test_hedge_models_must_name_a_model_or_a_route(tmp_path, migrated_template, sims):
    settings = hedging_settings(tmp_path, migrated_template, sims, hedge_models=["gpt-image-3"])
    with pytest.raises(ConfigError, match="gpt-image-3"):
        create_app(settings, catalog=two_host_catalog(), migrate=False)
    route = hedging_settings(
        tmp_path, migrated_template, sims, hedge_models=["primary/gpt-image-2"]
    )
    assert create_app(route, catalog=two_host_catalog(), migrate=False)
