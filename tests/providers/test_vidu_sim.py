"""End to end through `reapi.ReAPI` against two Vidu simulators on real sockets: text and image
to video, every value the catalog offers accepted, faults on the primary served by the backup,
policy failures never resubmitted, and a task that ends failed resubmitted once."""

from __future__ import annotations

import time

import pytest

from reapi import AsyncReAPI, ContentPolicyError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, png_bytes
from reapi.testing._jpeg import is_jpeg
from reapi.testing.vidu_sim import ViduSimulator

DEADLINE = 0.3
KEY = "vidu-sim-key"


def two_account_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models["vidu-q3"].model_dump(mode="json")
    first = {**spec["routes"][0], "first_byte_timeout": None}  # the test's own deadline
    spec["routes"] = [first, {**first, "provider": "backup"}]
    vidu = base.providers["vidu"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"vidu": vidu, "backup": vidu}, "models": {"vidu-q3": spec}}
    )


@pytest.fixture
def sims():
    primary = SimServer(ViduSimulator(KEY)).start()
    backup = SimServer(ViduSimulator(KEY)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"vidu": KEY, "backup": KEY},
        provider_base_urls={"vidu": primary.base_url, "backup": backup.base_url},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    return sum(n for key, n in server.app.requests.items() if key.startswith("POST "))


def test_text_to_video_lifecycle_with_cover_thumbnail(sims):
    client = make(sims)
    video = client.videos.create(model="vidu-q3", prompt="waves", size="1920x1080", seconds=8)
    assert video.status == "queued" and video.reapi.provider == "vidu"
    assert client.videos.retrieve(video.id).status == "queued"  # queueing
    assert client.videos.retrieve(video.id).status == "in_progress"  # processing
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.expires_at > time.time() + 86000
    assert is_mp4(client.videos.download_content(done.id).content)
    assert is_jpeg(client.videos.download_content(done.id, variant="thumbnail").content)
    assert sims[0].app.requests["POST /ent/v2/text2video"] == 1


def test_image_to_video_uses_img2video(sims):
    client = make(sims)
    video = client.videos.create(
        model="vidu-q3", prompt="waves", input_reference=png_bytes(16, 9), resolution="1080p"
    )
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed"
    assert sims[0].app.requests["POST /ent/v2/img2video"] == 1


def test_every_ratio_resolution_and_duration_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    caps = two_account_catalog().models["vidu-q3"].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.videos.create(
                model="vidu-q3", prompt="p", aspect_ratio=ratio, resolution=resolution
            )
    for seconds in caps.seconds:
        client.videos.create(model="vidu-q3", prompt="p", seconds=seconds)
    for size in caps.sizes:
        client.videos.create(model="vidu-q3", prompt="p", size=size)
    assert creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
def test_vidu_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=1)
    video = make(sims).videos.create(model="vidu-q3", prompt="p")
    assert video.reapi.provider == "backup"
    assert [a.code for a in video.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    video = make(sims).videos.create(model="vidu-q3", prompt="p")
    assert video.reapi.provider == "backup"
    assert time.perf_counter() - started < DEADLINE + 0.5


def test_a_bearer_key_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    video = make(sims).videos.create(model="vidu-q3", prompt="p")
    assert [a.code for a in video.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


def test_a_forbidden_prompt_is_blocked_and_not_failed_over(sims):
    with pytest.raises(ContentPolicyError) as info:
        make(sims).videos.create(model="vidu-q3", prompt="forbidden waves")
    assert info.value.provider_code == "TaskPromptPolicyViolation"
    assert creates(sims[1]) == 0


def test_a_flagged_creation_is_content_blocked_and_not_resubmitted(sims):
    sims[0].app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims)
    done = client.videos.wait(
        client.videos.create(model="vidu-q3", prompt="p").id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


def test_a_failed_task_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model="vidu-q3", prompt="p")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert client.videos.retrieve(video.id).id == done.id


def test_a_task_failing_everywhere_ends_failed_after_one_resubmission(sims):
    for server in sims:
        server.app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    done = client.videos.wait(
        client.videos.create(model="vidu-q3", prompt="p").id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert creates(sims[0]) + creates(sims[1]) == 2


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.RESET)
    async with make(sims, AsyncReAPI) as client:
        video = await client.videos.create(model="vidu-q3", prompt="w", seconds=1)
        assert video.reapi.provider == "backup"
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)
