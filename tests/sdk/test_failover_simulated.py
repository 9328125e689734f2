"""Failover through ReAPI against two OpenAI simulators on real sockets: every fault, its cost."""

import logging
import time
import traceback

import pytest

from reapi import (
    AsyncReAPI,
    ContentPolicyError,
    File,
    InvalidRequestError,
    NoRouteAvailableError,
    ReAPI,
    ReapiError,
    RouterConfig,
)
from reapi.testing import Fault, OpenAISimulator, SimServer, is_mp4, png_bytes

DEADLINE = 0.3
MARKER = "MARKER-sdk-31d9"


@pytest.fixture
def sims():
    primary = SimServer(OpenAISimulator(polls_to_complete=2)).start()
    backup = SimServer(OpenAISimulator(polls_to_complete=2)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(catalog, sims, cls=ReAPI):
    primary, backup = sims
    return cls(
        catalog=catalog,
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


FAULTS = [
    Fault.ERROR_500,
    Fault.ERROR_503,
    Fault.RATE_LIMIT,
    Fault.REFUSE,
    Fault.RESET,
    Fault.HANG,
    Fault.SLOW_BODY,
    Fault.TRUNCATED_JSON,
]


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_on_the_primary_is_served_by_the_backup(catalog, sims, fault):
    primary, _ = sims
    primary.faults.set(fault)
    client = make(catalog, sims)
    started = time.perf_counter()
    result = client.images.generate(model="gpt-image-2", prompt=MARKER)
    elapsed = time.perf_counter() - started
    assert result.reapi.provider == "backup" and result.reapi.attempts == 2
    # A hang costs at most the first-byte deadline; a slow body at most the body deadline.
    budget = {Fault.HANG: DEADLINE + 0.3, Fault.SLOW_BODY: DEADLINE + 1.0 + 0.3}.get(fault, 0.3)
    assert elapsed < budget
    # The breaker now keeps requests off the primary (unreachable faults open at once).
    if fault in (Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.RATE_LIMIT, Fault.SLOW_BODY):
        again = client.images.generate(model="gpt-image-2", prompt="p")
        assert again.reapi.attempts == 1 and again.reapi.provider == "backup"


def test_content_block_is_returned_not_failed_over(catalog, sims):
    _primary, backup = sims
    with pytest.raises(ContentPolicyError):
        make(catalog, sims).images.generate(model="gpt-image-2", prompt="forbidden " + MARKER)
    assert backup.app.requests == {}


def test_both_down_says_how_each_route_failed(catalog, sims):
    for server in sims:
        server.faults.set(Fault.REFUSE)
    with pytest.raises(NoRouteAvailableError) as info:
        make(catalog, sims).images.generate(model="gpt-image-2", prompt="p")
    assert [a.code for a in info.value.attempts] == ["upstream_unreachable"] * 2


def test_video_lifecycle_and_download(catalog, sims):
    client = make(catalog, sims)
    video = client.videos.create(model="sim-video", prompt="waves", seconds=8, size="1280x720")
    assert video.status == "queued" and video.reapi.provider == "primary"
    seen = []
    done = client.videos.wait(video.id, poll_interval=0.01, on_progress=seen.append)
    assert done.status == "completed" and [v.status for v in seen][-1] == "completed"
    assert is_mp4(client.videos.download_content(done.id).content)
    assert client.videos.download_content(done.id, variant="thumbnail").content.startswith(
        b"\x89PNG"
    )
    # Resumable by id from another client (another process) with the same keys.
    other = make(catalog, sims)
    assert other.videos.retrieve(done.id).status == "completed"
    assert [v.id for v in client.videos.list().data] == [done.id]
    assert client.videos.delete(done.id).deleted


def test_failed_task_is_resubmitted_once_to_the_next_route(catalog, sims):
    primary, _backup = sims
    primary.app.faults.set(Fault.TASK_FAILS)
    client = make(catalog, sims)
    video = client.videos.create(model="sim-video", prompt="waves", seconds=4)
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert done.id != video.id
    assert client.videos.retrieve(video.id).id == done.id  # the old id follows the new job


def test_failed_task_everywhere_ends_failed_after_one_resubmission(catalog, sims):
    for server in sims:
        server.app.faults.set(Fault.TASK_FAILS)
    client = make(catalog, sims)
    video = client.videos.create(model="sim-video", prompt="waves", seconds=4)
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert sims[0].app.requests["POST /videos"] + sims[1].app.requests["POST /videos"] == 2


def test_blocked_video_is_not_resubmitted(catalog, sims):
    client = make(catalog, sims)
    video = client.videos.create(model="sim-video", prompt="forbidden waves", seconds=4)
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert "POST /videos" not in sims[1].app.requests


async def test_async_client_against_simulators(catalog, sims):
    sims[0].faults.set(Fault.HANG)
    async with make(catalog, sims, AsyncReAPI) as client:
        started = time.perf_counter()
        image = await client.images.generate(model="gpt-image-2", prompt="p")
        assert image.reapi.provider == "backup"
        assert time.perf_counter() - started < DEADLINE + 0.3
        video = await client.videos.create(model="sim-video", prompt="w", seconds=4)
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)


def test_gateway_mode_speaks_openai_wire(sims):
    primary, _ = sims
    client = ReAPI(base_url=primary.base_url + "/v1", api_key="sk-sim")
    assert client.images.generate(model="gpt-image-2", prompt="p").data[0].content()


def test_no_marker_survives_anywhere(catalog, sims, caplog):
    """CHECKS.md §1: markers in prompt, image bytes, mask and user through success, validation
    errors, an upstream 400 that echoes the prompt, 5xx, timeout and failover."""
    caplog.set_level(logging.DEBUG)
    primary, backup = sims
    image = File(png_bytes() + MARKER.encode(), "ref.png", "image/png")
    texts: list[str] = []

    def attempt(fault: Fault, **kwargs) -> None:
        primary.faults.set(fault)
        client = make(catalog, sims)
        call = dict(model="gpt-image-2", prompt=MARKER, user=MARKER + "-user")
        call.update(kwargs)
        try:
            if "image" in call:
                result = client.images.edit(mask=File(png_bytes() + MARKER.encode()), **call)
            else:
                result = client.images.generate(**call)
            texts.append(result.model_dump_json())
        except ReapiError as error:
            texts.extend([str(error), repr(error), "".join(traceback.format_exception(error))])

    attempt(Fault.NONE)
    attempt(Fault.NONE, image=[image])
    attempt(Fault.NONE, size="1x1")  # our validation error
    attempt(Fault.NONE, prompt="forbidden " + MARKER)  # upstream 400 echoing the prompt
    attempt(Fault.ERROR_500)
    attempt(Fault.HANG)
    attempt(Fault.RESET, image=[image])
    backup.faults.set(Fault.ERROR_500)
    attempt(Fault.ERROR_500)  # everything down
    with pytest.raises(InvalidRequestError):
        make(catalog, sims).images.generate(model="gpt-image-2", prompt="p", size=MARKER)
    assert texts
    for text in [*texts, caplog.text]:
        assert MARKER not in text
