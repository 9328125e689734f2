"""End to end through `reapi.ReAPI` against two xAI simulators on real sockets: images
(generate, one- and multi-image edits), video (text and image to video), every value the catalog
offers accepted, faults on the primary served by the backup, silent moderation never failed over,
and a video request that ends failed resubmitted once."""

from __future__ import annotations

import time

import pytest

from reapi import AsyncReAPI, ContentPolicyError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, png_bytes
from reapi.testing._jpeg import is_jpeg
from reapi.testing.xai_sim import XAISimulator

DEADLINE = 0.3
KEY = "xai-sim-key"
IMAGE, VIDEO = "grok-imagine-1.0", "grok-imagine-1.0-video"


def two_account_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in (IMAGE, VIDEO):
        spec = base.models[model_id].model_dump(mode="json")
        first = {**spec["routes"][0], "first_byte_timeout": None}  # the test's own deadline
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    xai = base.providers["xai"].model_dump(mode="json")
    return Catalog.model_validate({"providers": {"xai": xai, "backup": xai}, "models": models})


@pytest.fixture
def sims():
    primary = SimServer(XAISimulator(KEY)).start()
    backup = SimServer(XAISimulator(KEY)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"xai": KEY, "backup": KEY},
        provider_base_urls={"xai": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    return sum(n for key, n in server.app.requests.items() if key.startswith("POST "))


def test_images_generate_and_edit(sims):
    client = make(sims)
    made = client.images.generate(model=IMAGE, prompt="a fox", n=2, size="2048x2048")
    assert len(made.data) == 2 and all(is_jpeg(d.content()) for d in made.data)
    one = client.images.edit(model=IMAGE, prompt="add a hat", image=png_bytes(8, 8))
    many = client.images.edit(
        model=IMAGE, prompt="merge", image=[png_bytes(8, 8), png_bytes(4, 4)], aspect_ratio="16:9"
    )
    assert is_jpeg(one.data[0].content()) and is_jpeg(many.data[0].content())
    assert sims[0].app.requests["POST /v1/images/edits"] == 2


def test_every_image_ratio_tier_and_size_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    caps = two_account_catalog().models[IMAGE].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.images.generate(
                model=IMAGE, prompt="p", aspect_ratio=ratio, resolution=resolution
            )
    for size in caps.sizes:
        client.images.generate(model=IMAGE, prompt="p", size=size)
    assert creates(sims[1]) == 0


def test_text_to_video_lifecycle(sims):
    client = make(sims)
    video = client.videos.create(model=VIDEO, prompt="waves", size="1280x720", seconds=8)
    assert video.status == "queued" and video.reapi.provider == "xai"
    assert client.videos.retrieve(video.id).status == "queued"  # 202, no body yet
    assert client.videos.retrieve(video.id).status == "in_progress"  # pending, 50 %
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.seconds == "8"
    assert is_mp4(client.videos.download_content(done.id).content)


def test_image_to_video_and_every_video_value_the_catalog_allows(sims):
    client = make(sims)
    client.videos.create(model=VIDEO, prompt="p", input_reference=png_bytes(16, 9))
    caps = two_account_catalog().models[VIDEO].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.videos.create(model=VIDEO, prompt="p", aspect_ratio=ratio, resolution=resolution)
    for seconds in caps.seconds:
        client.videos.create(model=VIDEO, prompt="p", seconds=seconds)
    for size in caps.sizes:
        client.videos.create(model=VIDEO, prompt="p", size=size)
    assert creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_permission_denied"),
    ],
)
def test_xai_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=2)
    client = make(sims)
    image = client.images.generate(model=IMAGE, prompt="p")
    video = client.videos.create(model=VIDEO, prompt="p")
    for result in (image, video):
        assert [a.code for a in result.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    assert make(sims).images.generate(model=IMAGE, prompt="p").reapi.provider == "backup"
    assert make(sims).videos.create(model=VIDEO, prompt="p").reapi.provider == "backup"
    assert time.perf_counter() - started < 2 * DEADLINE + 1.0


def test_a_wrong_key_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    image = make(sims).images.generate(model=IMAGE, prompt="p")
    assert [a.code for a in image.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_silently_moderated_images_are_blocked_and_not_failed_over(sims, how):
    if how == "fault":
        sims[0].app.faults.set(Fault.CONTENT_POLICY)
    with pytest.raises(ContentPolicyError):
        make(sims).images.generate(model=IMAGE, prompt="forbidden fox" if how == "prompt" else "p")
    assert creates(sims[1]) == 0


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_a_moderated_video_is_content_blocked_and_not_resubmitted(sims, how):
    if how == "fault":
        sims[0].app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims)
    prompt = "forbidden waves" if how == "prompt" else "p"
    done = client.videos.wait(
        client.videos.create(model=VIDEO, prompt=prompt).id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


def test_a_failed_request_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model=VIDEO, prompt="p")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert client.videos.retrieve(video.id).id == done.id


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.RESET)
    async with make(sims, AsyncReAPI) as client:
        image = await client.images.generate(model=IMAGE, prompt="p")
        assert image.reapi.provider == "backup" and is_jpeg(image.data[0].content())
        video = await client.videos.create(model=VIDEO, prompt="w", seconds=1)
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)
