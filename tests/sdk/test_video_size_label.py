"""The size an in-process video reports before its provider says what it made is the one it
asked for, as the gateway reports it: the model's preset in the asked aspect ratio at the asked
resolution, else at the tier an unspecified request is priced at. It was `None` (or
`16:9@720p` when both were given), where the gateway said `1280x720`."""

import pytest
from tests.conftest import tiered_video_catalog

from reapi import AsyncReAPI, ReAPI
from reapi.testing import OpenAISimulator, SimServer

CASES = [
    ({}, "1280x720"),
    ({"aspect_ratio": "9:16"}, "720x1280"),
    ({"resolution": "480p"}, "864x480"),
    ({"aspect_ratio": "9:16", "resolution": "480p"}, "480x864"),
    ({"size": "720x1280"}, "720x1280"),
]


def _client(sim, cls=ReAPI):
    url = sim.base_url + "/v1"
    return cls(
        catalog=tiered_video_catalog(),
        provider_keys={"primary": "sk-sim"},
        provider_base_urls={"primary": url},
    )


@pytest.mark.parametrize(("fields", "size"), CASES)
def test_the_size_reported_is_the_one_asked_for(fields, size):
    with SimServer(OpenAISimulator("sk-sim")) as sim, _client(sim) as c:
        video = c.videos.create(model="sim-video", prompt="a wave", seconds=4, **fields)
        assert video.size == size


async def test_the_async_client_reports_the_same_size():
    with SimServer(OpenAISimulator("sk-sim")) as sim:
        async with _client(sim, AsyncReAPI) as c:
            video = await c.videos.create(model="sim-video", prompt="a wave", seconds=4)
            assert video.size == "1280x720"
