"""The size a video job reports before its upstream says what it made: the one its credits are
charged for. A request that names no resolution is priced at the tier the price has no figure of
its own for (the maker's default), so the size shown is that tier's preset, in the aspect ratio
asked; a first preset of another tier showed a cheaper size than the one charged."""

import pytest
from tests.conftest import two_host_catalog
from tests.server.helpers import auth, ledger_matches

from reapi.catalog import Catalog


def tiered_catalog() -> Catalog:
    """sim-video with two tiers: 480p at 5 credits a second, 720p (unpriced: the default) at
    10; its first preset is a 480p one, as Seedance's and Grok Imagine's are."""
    data = two_host_catalog().model_dump(mode="json")
    video = data["models"]["sim-video"]
    video["capabilities"]["sizes"] = {
        "864x480": {"aspect_ratio": "16:9", "resolution": "480p"},
        "480x864": {"aspect_ratio": "9:16", "resolution": "480p"},
        "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
        "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
    }
    video["capabilities"]["aspect_ratios"] = ["16:9", "9:16"]
    video["capabilities"]["resolutions"] = ["480p", "720p"]
    video["price"] = {"unit": "second", "credits": 10, "by_resolution": {"480p": 5}}
    return Catalog.model_validate(data)


@pytest.mark.parametrize(
    ("fields", "size", "cost"),
    [
        ({}, "1280x720", 40),
        ({"aspect_ratio": "9:16"}, "720x1280", 40),
        ({"resolution": "480p"}, "864x480", 20),
        ({"aspect_ratio": "9:16", "resolution": "480p"}, "480x864", 20),
        ({"size": "480x864"}, "480x864", 20),
    ],
)
async def test_the_size_shown_is_the_one_charged(make_gateway, fields, size, cost):
    gateway = await make_gateway(catalog=tiered_catalog())
    account, key = await gateway.account(credits=100)
    body = {"model": "sim-video", "prompt": "a wave", "seconds": "4", **fields}
    created = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200, created.text
    assert created.json()["size"] == size
    assert await ledger_matches(gateway.rt, account) == (100 - cost, cost)
    listed = await gateway.client.get(f"/v1/videos/{created.json()['id']}", headers=auth(key))
    assert listed.json()["size"] == size
