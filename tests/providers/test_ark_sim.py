"""End to end through `reapi.ReAPI` against two ModelArk simulators on real sockets: every preset
the catalog offers is accepted, each fault on the primary is served by the backup, content
blocks are never failed over, and a Seedance task that ends failed is resubmitted once."""

from __future__ import annotations

import logging
import time
import traceback

import pytest

from reapi import AsyncReAPI, ContentPolicyError, ReAPI, ReapiError
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, is_png, png_bytes
from reapi.testing._jpeg import is_jpeg
from reapi.testing.ark_sim import ArkSimulator

DEADLINE = 0.3
KEY = "sk-ark-sim"
MARKER = "MARKER-arksim-0e4d"


def two_account_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in ("seedream-5.0-lite", "seedance-2.0"):
        spec = base.models[model_id].model_dump(mode="json")
        # The test's own deadline, not the shipped 300 s for slow Seedream batches.
        first = {**spec["routes"][0], "first_byte_timeout": None}
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    ark = base.providers["byteplus"].model_dump(mode="json")
    return Catalog.model_validate({"providers": {"byteplus": ark, "backup": ark}, "models": models})


@pytest.fixture
def sims():
    primary = SimServer(ArkSimulator(KEY, polls_before_done=1)).start()
    backup = SimServer(ArkSimulator(KEY, polls_before_done=1)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI, primary_key=KEY):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"byteplus": primary_key, "backup": KEY},
        provider_base_urls={
            "byteplus": primary.base_url + "/api/v3",
            "backup": backup.base_url + "/api/v3",
        },
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    requests = server.app.requests
    return requests.get("POST /images/generations", 0) + requests.get(
        "POST /contents/generations/tasks", 0
    )


# -- Seedream ---------------------------------------------------------------------------------
def test_image_from_the_primary_as_jpeg_bytes(sims):
    result = make(sims).images.generate(model="seedream-5.0-lite", prompt="a lighthouse")
    assert result.reapi.provider == "byteplus"
    assert is_jpeg(result.data[0].content())
    assert result.size == "2048x2048" and result.output_format == "jpeg"
    assert result.usage["generated_images"] == 1
    assert creates(sims[1]) == 0


def test_png_and_url_results_point_back_at_the_simulator(sims):
    client = make(sims)
    result = client.images.generate(
        model="seedream-5.0-lite", prompt="p", output_format="png", response_format="url"
    )
    url = result.data[0].url
    assert url.startswith(sims[0].base_url + "/files/") and "X-Tos-Expires=86400" in url
    assert result.reapi.url_expires_at > time.time() + 86000
    inline = client.images.generate(model="seedream-5.0-lite", prompt="p", output_format="png")
    assert is_png(inline.data[0].content())


def test_every_size_and_tier_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    spec = two_account_catalog().models["seedream-5.0-lite"]
    for size in spec.capabilities.sizes:
        result = client.images.generate(
            model="seedream-5.0-lite", prompt="p", size=size, response_format="url"
        )
        assert result.size == size
    for tier in spec.capabilities.resolutions:
        client.images.generate(
            model="seedream-5.0-lite", prompt="p", resolution=tier, response_format="url"
        )
    assert creates(sims[1]) == 0


def test_batch_and_edit_with_references(sims):
    client = make(sims)
    batch = client.images.generate(model="seedream-5.0-lite", prompt="p", n=4)
    assert len(batch.data) == 4 and all(is_jpeg(i.content()) for i in batch.data)
    edited = client.images.edit(
        model="seedream-5.0-lite", prompt="p", image=[png_bytes(8, 8)] * 14, n=1
    )
    assert len(edited.data) == 1 and creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
def test_ark_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=1)
    result = make(sims).images.generate(model="seedream-5.0-lite", prompt="p")
    assert result.reapi.provider == "backup"
    assert [a.code for a in result.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.ERROR_500,
        Fault.RATE_LIMIT,
        Fault.REFUSE,
        Fault.RESET,
        Fault.HANG,
        Fault.SLOW_BODY,
        Fault.TRUNCATED_JSON,
    ],
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    result = make(sims).images.generate(model="seedream-5.0-lite", prompt="p")
    assert result.reapi.provider == "backup" and result.reapi.attempts == 2
    budget = {Fault.HANG: DEADLINE + 0.5, Fault.SLOW_BODY: DEADLINE + 1.5}.get(fault, 0.5)
    assert time.perf_counter() - started < budget


def test_a_refused_key_fails_over(sims):
    result = make(sims, primary_key="wrong").images.generate(model="seedream-5.0-lite", prompt="p")
    assert [a.code for a in result.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


def test_a_forbidden_prompt_is_blocked_and_not_failed_over(sims):
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(model="seedream-5.0-lite", prompt="forbidden " + MARKER)
    assert info.value.provider_code == "InputTextSensitiveContentDetected"
    assert MARKER not in str(info.value) and creates(sims[1]) == 0


@pytest.mark.parametrize("n", [1, 3])
def test_a_filtered_output_is_blocked_and_not_failed_over(sims, n):
    sims[0].app.faults.set(Fault.CONTENT_POLICY, count=1)
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(model="seedream-5.0-lite", prompt="p", n=n)
    assert info.value.provider_code == "OutputImageSensitiveContentDetected"
    assert creates(sims[1]) == 0


# -- Seedance ---------------------------------------------------------------------------------
def test_video_lifecycle_download_and_delete(sims):
    client = make(sims)
    video = client.videos.create(
        model="seedance-2.0", prompt="waves", size="1280x720", input_reference=png_bytes(16, 9)
    )
    assert video.status == "queued" and video.reapi.provider == "byteplus"
    assert client.videos.retrieve(video.id).status == "in_progress"
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.seconds == "5"
    assert is_mp4(client.videos.download_content(done.id).content)
    assert client.videos.delete(done.id).deleted
    assert sims[0].app.requests["DELETE /contents/generations/tasks/{id}"] == 1


def test_every_ratio_resolution_and_duration_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    caps = two_account_catalog().models["seedance-2.0"].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.videos.create(
                model="seedance-2.0", prompt="p", aspect_ratio=ratio, resolution=resolution
            )
    for seconds in caps.seconds:
        client.videos.create(model="seedance-2.0", prompt="p", seconds=seconds)
    assert creates(sims[1]) == 0


def test_create_faults_fail_over(sims):
    sims[0].app.faults.set(Fault.RATE_LIMIT, count=1)
    video = make(sims).videos.create(model="seedance-2.0", prompt="p")
    assert video.reapi.provider == "backup"


def test_a_failed_task_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model="seedance-2.0", prompt="waves")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert done.id != video.id
    assert client.videos.retrieve(video.id).id == done.id  # the old id follows the new task


def test_a_task_failing_everywhere_ends_failed_after_one_resubmission(sims):
    for server in sims:
        server.app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    done = client.videos.wait(
        client.videos.create(model="seedance-2.0", prompt="waves").id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert creates(sims[0]) + creates(sims[1]) == 2


def test_a_filtered_video_is_not_resubmitted(sims):
    sims[0].app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims)
    done = client.videos.wait(
        client.videos.create(model="seedance-2.0", prompt="waves").id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


def test_a_forbidden_video_prompt_is_refused_at_create(sims):
    with pytest.raises(ContentPolicyError):
        make(sims).videos.create(model="seedance-2.0", prompt="forbidden waves")
    assert creates(sims[1]) == 0


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.HANG)
    async with make(sims, AsyncReAPI) as client:
        image = await client.images.generate(model="seedream-5.0-lite", prompt="p")
        assert image.reapi.provider == "backup" and is_jpeg(image.data[0].content())
        video = await client.videos.create(model="seedance-2.0", prompt="w")
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)


def test_no_marker_survives(sims, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for fault, prompt in [
        (Fault.NONE, MARKER),
        (Fault.NONE, "forbidden " + MARKER),
        (Fault.ERROR_500, MARKER),
        (Fault.TRUNCATED_JSON, MARKER),
    ]:
        sims[0].faults.set(fault)
        try:
            texts.append(
                make(sims)
                .images.generate(model="seedream-5.0-lite", prompt=prompt)
                .model_dump_json()
            )
        except ReapiError as error:
            texts.extend([str(error), repr(error), "".join(traceback.format_exception(error))])
    for text in [*texts, caplog.text]:
        assert MARKER not in text
