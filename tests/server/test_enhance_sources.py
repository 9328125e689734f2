"""`enhance-video-1.0` at the gateway with its maker (Topaz) failing: the source the gateway
fetched is held to the 16 s the flat price covers before any route is tried, and the second host
(Replicate, through its simulator) reads the bytes the gateway vetted, never the caller's URL."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from tests.providers.mp4_boxes import mp4
from tests.server.fakes import FakeUpstream
from tests.server.helpers import auth, ledger_matches

from reapi.catalog import Catalog, default_catalog
from reapi.testing import Fault, sample_mp4
from reapi.testing.replicate_sim import ReplicateSimulator
from reapi.testing.topaz_sim import TopazSimulator

MODEL = "enhance-video-1.0"
KEYS = {"topaz": "tz-key", "replicate": "r8-key"}
URLS = {"topaz": "http://topaz.test", "replicate": "http://replicate.test/v1"}


@dataclass
class SimUpstream(FakeUpstream):
    """Topaz (every create failing) and Replicate, answered by their simulators."""

    topaz: TopazSimulator = field(default_factory=lambda: TopazSimulator(KEYS["topaz"]))
    replicate: ReplicateSimulator = field(
        default_factory=lambda: ReplicateSimulator(KEYS["replicate"])
    )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        app = self.topaz if request.url.host == "topaz.test" else self.replicate
        if app is self.topaz:
            app.faults.set(Fault.ERROR_503)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer_headers, body = app.handle(
            request.method,
            request.url.path,
            request.url.query.decode(),
            headers,
            request.content,
            origin=f"{request.url.scheme}://{request.url.host}",
        )
        return httpx.Response(status, headers=answer_headers, content=body)


@pytest.fixture
def upstream() -> SimUpstream:
    return SimUpstream()


def catalog() -> Catalog:
    base = default_catalog()
    return Catalog.model_validate(
        {
            "providers": {
                name: base.providers[name].model_dump(mode="json")
                for name in ("topaz", "replicate")
            },
            "models": {MODEL: base.models[MODEL].model_dump(mode="json")},
        }
    )


@pytest.fixture
async def gateway(make_gateway, media_host):
    gateway = await make_gateway(catalog=catalog(), provider_keys=KEYS, provider_base_urls=URLS)
    fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    gateway.rt.fetcher = gateway.rt.engine.fetcher = fetcher
    return gateway


async def enhance(gateway, key, url):
    body = {"model": MODEL, "input_reference": {"image_url": url}}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def test_replicate_reads_the_fetched_bytes_not_the_callers_url(gateway, media_host):
    _, key = await gateway.account()
    source = media_host.serve("/clip.mp4", sample_mp4())
    response = await enhance(gateway, key, source)
    assert response.status_code == 200, response.text
    assert response.json()["reapi"]["provider"] == "replicate"
    assert gateway.upstream.replicate.videos == [sample_mp4()]
    assert len(media_host.requests) == 1


async def test_a_long_source_is_refused_and_costs_nothing(gateway, media_host):
    account, key = await gateway.account(credits=10_000)
    source = media_host.serve("/clip.mp4", mp4(frames=24 * 17, fps=24))
    response = await enhance(gateway, key, source)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("video_too_long", "input_reference")
    assert gateway.upstream.replicate.requests == {} and gateway.upstream.topaz.requests == {}
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
