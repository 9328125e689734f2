"""The simulator framework and the OpenAI simulator, exercised with plain httpx and openai."""

import json
import struct
import zlib

import httpx
import openai
import pytest

from reapi.testing import (
    Fault,
    OpenAISimulator,
    SimServer,
    default_simulators,
    is_mp4,
    is_png,
    png_bytes,
    run_simulators,
    sample_mp4,
)

AUTH = {"authorization": "Bearer sk-sim"}


@pytest.fixture
def sim():
    with SimServer(OpenAISimulator()) as server:
        yield server


def test_png_is_valid():
    data = png_bytes(5, 3, (1, 2, 3))
    assert is_png(data)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (5, 3)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert raw[:4] == b"\x00\x01\x02\x03" and len(raw) == 3 * (1 + 5 * 3)


def test_sample_mp4_is_real():
    data = sample_mp4()
    assert is_mp4(data) and b"moov" in data and b"avc1" in data


def test_transport_faults(sim):
    url = sim.base_url + "/v1/videos"
    sim.faults.set(Fault.REFUSE)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, headers=AUTH, timeout=1)
    sim.faults.set(Fault.RESET)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(url, headers=AUTH, timeout=1)
    sim.faults.set(Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers=AUTH, timeout=0.3)
    sim.faults.set(Fault.TRUNCATED_JSON)
    with pytest.raises(json.JSONDecodeError):
        httpx.get(url, headers=AUTH, timeout=1).json()
    sim.faults.set(Fault.RATE_LIMIT, retry_after=4)
    limited = httpx.get(url, headers=AUTH, timeout=1)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "4"
    sim.faults.set(Fault.ERROR_500, count=1)
    assert httpx.get(url, headers=AUTH).status_code == 500
    assert httpx.get(url, headers=AUTH).status_code == 200


def test_slow_body_trickles(sim):
    sim.faults.set(Fault.SLOW_BODY)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sim.base_url + "/v1/images/generations", headers=AUTH,
                   timeout=httpx.Timeout(1.0, read=0.05),
                   json={"model": "gpt-image-2", "prompt": "p"})


def test_control_endpoint_sets_faults(sim):
    httpx.post(sim.base_url + "/__sim__/fault", json={"fault": "error_503"})
    assert httpx.get(sim.base_url + "/v1/videos", headers=AUTH).status_code == 503
    httpx.post(sim.base_url + "/__sim__/fault", json={"fault": "none"})
    assert httpx.get(sim.base_url + "/__sim__/health").json()["fault"] == "none"


def test_openai_client_images_and_errors(sim):
    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-sim", max_retries=0)
    image = client.images.generate(model="gpt-image-2", prompt="a fox", size="1280x720", n=2)
    assert len(image.data) == 2 and image.size == "1280x720"
    png = png_bytes()
    edited = client.images.edit(model="gpt-image-2", prompt="hat",
                                image=[("a.png", png), ("b.png", png)], mask=("m.png", png))
    assert edited.data[0].b64_json
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="gpt-image-2", prompt="something forbidden")
    assert blocked.value.code == "moderation_blocked"
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="gpt-image-2", prompt="p", size="1000x1000")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=sim.base_url + "/v1", api_key="bad", max_retries=0).models
        openai.OpenAI(base_url=sim.base_url + "/v1", api_key="bad",
                      max_retries=0).images.generate(model="gpt-image-2", prompt="p")
    sim.app.faults.set(Fault.QUOTA_EXHAUSTED, count=1)
    with pytest.raises(openai.RateLimitError) as quota:
        client.images.generate(model="gpt-image-2", prompt="p")
    assert quota.value.code == "insufficient_quota"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openai_client_videos(sim):
    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-sim", max_retries=0)
    video = client.videos.create(model="sora-2", prompt="waves", seconds="8", size="1280x720")
    assert video.status == "queued"
    for _ in range(2):
        video = client.videos.retrieve(video.id)
    assert video.status == "completed" and video.expires_at
    assert is_mp4(client.videos.download_content(video.id).content)
    assert is_png(client.videos.download_content(video.id, variant="thumbnail").content)
    assert [v.id for v in client.videos.list().data] == [video.id]
    assert client.videos.delete(video.id).deleted
    sim.app.faults.set(Fault.TASK_FAILS, count=1)
    failing = client.videos.create(model="sora-2", prompt="waves")
    for _ in range(2):
        failing = client.videos.retrieve(failing.id)
    assert failing.status == "failed" and failing.error.code == "video_generation_failed"


def test_run_simulators_and_control_server():
    handle = run_simulators(default_simulators())
    try:
        assert set(handle.provider_urls) >= {"openai", "gemini"}
        assert handle.provider_urls["openai"].endswith("/v1")
        httpx.post(handle.control_url + "/faults/openai", json={"fault": "refuse"})
        with pytest.raises(httpx.ConnectError):
            httpx.get(handle.urls["openai"] + "/v1/videos", timeout=1)
        httpx.post(handle.control_url + "/faults/openai", json={"fault": "none"})
        answer = httpx.get(handle.urls["openai"] + "/v1/videos",
                           headers={"authorization": f"Bearer {handle.api_key}"})
        assert answer.status_code == 200
    finally:
        handle.stop()
