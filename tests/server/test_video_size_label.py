"""The size a video job reports before its upstream says what it made: the one its credits are
charged for. A request that names no resolution is priced at the tier the price has no figure of
its own for (the maker's default), so the size shown is that tier's preset, in the aspect ratio
asked; a first preset of another tier showed a cheaper size than the one charged."""

import pytest
from tests.conftest import tiered_video_catalog
from tests.server.helpers import auth, ledger_matches


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
    gateway = await make_gateway(catalog=tiered_video_catalog())
    account, key = await gateway.account(credits=100)
    body = {"model": "sim-video", "prompt": "a wave", "seconds": "4", **fields}
    created = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200, created.text
    assert created.json()["size"] == size
    assert await ledger_matches(gateway.rt, account) == (100 - cost, cost)
    listed = await gateway.client.get(f"/v1/videos/{created.json()['id']}", headers=auth(key))
    assert listed.json()["size"] == size
