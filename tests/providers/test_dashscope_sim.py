"""End to end through `reapi.ReAPI` against two DashScope simulators on real sockets: Happy
Horse text and image to video, every value the catalog offers accepted, faults on the primary
served by the backup, data-inspection blocks never failed over, and a task that ends failed
resubmitted once."""

from __future__ import annotations

import time

import pytest

from reapi import AsyncReAPI, ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, png_bytes
from reapi.testing.dashscope_sim import DashScopeSimulator

DEADLINE = 0.3
KEY = "ds-sim-key"
MODEL = "happy-horse-1.0"
FRAME = "https://cdn.example.test/first.png"


def two_account_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models[MODEL].model_dump(mode="json")
    first = {**spec["routes"][0], "first_byte_timeout": None}  # the test's own deadline
    spec["routes"] = [first, {**first, "provider": "backup"}]
    dashscope = base.providers["dashscope"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"dashscope": dashscope, "backup": dashscope}, "models": {MODEL: spec}}
    )


@pytest.fixture
def sims():
    primary = SimServer(DashScopeSimulator(KEY)).start()
    backup = SimServer(DashScopeSimulator(KEY)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"dashscope": KEY, "backup": KEY},
        provider_base_urls={
            "dashscope": primary.base_url + "/api/v1",
            "backup": backup.base_url + "/api/v1",
        },
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    return sum(n for key, n in server.app.requests.items() if key.startswith("POST "))


def test_text_to_video_lifecycle(sims):
    client = make(sims)
    video = client.videos.create(model=MODEL, prompt="horses", size="1920x1080", seconds=8)
    assert video.status == "queued" and video.reapi.provider == "dashscope"
    assert client.videos.retrieve(video.id).status == "queued"  # PENDING
    assert client.videos.retrieve(video.id).status == "in_progress"  # RUNNING
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.seconds == "8"
    assert done.expires_at > time.time() + 86000
    assert is_mp4(client.videos.download_content(done.id).content)


def test_image_to_video_from_a_url(sims):
    client = make(sims)
    video = client.videos.create(
        model=MODEL, prompt="run", input_reference=FRAME, resolution="720p"
    )
    assert client.videos.wait(video.id, poll_interval=0.01).status == "completed"


def test_an_uploaded_first_frame_is_refused_with_a_reason(sims):
    with pytest.raises(InvalidRequestError) as info:
        make(sims).videos.create(model=MODEL, prompt="run", input_reference=png_bytes(16, 9))
    assert info.value.param == "input_reference" and "URL" in info.value.message
    assert creates(sims[0]) == 0


def test_every_ratio_resolution_and_duration_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    caps = two_account_catalog().models[MODEL].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.videos.create(model=MODEL, prompt="p", aspect_ratio=ratio, resolution=resolution)
    for seconds in caps.seconds:
        client.videos.create(model=MODEL, prompt="p", seconds=seconds, seed=2147483647)
    for size in caps.sizes:
        client.videos.create(model=MODEL, prompt="p", size=size)
    for resolution in caps.resolutions:
        client.videos.create(model=MODEL, prompt="p", input_reference=FRAME, resolution=resolution)
    assert creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
def test_dashscope_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=1)
    video = make(sims).videos.create(model=MODEL, prompt="p")
    assert [a.code for a in video.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    assert make(sims).videos.create(model=MODEL, prompt="p").reapi.provider == "backup"
    assert time.perf_counter() - started < DEADLINE + 0.5


def test_a_wrong_key_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    video = make(sims).videos.create(model=MODEL, prompt="p")
    assert [a.code for a in video.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


def test_a_forbidden_prompt_is_blocked_and_not_failed_over(sims):
    with pytest.raises(ContentPolicyError) as info:
        make(sims).videos.create(model=MODEL, prompt="forbidden horses")
    assert info.value.provider_code == "DataInspectionFailed"
    assert creates(sims[1]) == 0


def test_a_flagged_output_is_content_blocked_and_not_resubmitted(sims):
    sims[0].app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims)
    done = client.videos.wait(client.videos.create(model=MODEL, prompt="p").id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


def test_a_failed_task_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model=MODEL, prompt="p")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"


def test_a_task_failing_everywhere_ends_failed_after_one_resubmission(sims):
    for server in sims:
        server.app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    done = client.videos.wait(client.videos.create(model=MODEL, prompt="p").id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert creates(sims[0]) + creates(sims[1]) == 2


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.RESET)
    async with make(sims, AsyncReAPI) as client:
        video = await client.videos.create(model=MODEL, prompt="w", seconds=3)
        assert video.reapi.provider == "backup"
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)
