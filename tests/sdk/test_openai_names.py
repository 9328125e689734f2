"""What an openai-python user reaches for by its openai-python name: `client.<resource>
.with_raw_response`, `error.status_code`, `await AsyncOpenAI().close()` and
`videos.create_and_poll`/`poll`. Each raised AttributeError on ReAPI, whose names were
`client.with_raw_response.<resource>`, `error.status`, `aclose()` and `wait()` only."""

import time

import httpx
import pytest
from tests.sdk.scripted_gateway import error_answer, image_answer, serve, video

from reapi import (
    AsyncReAPI,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    NoRouteAvailableError,
    ReAPI,
)
from reapi.testing import Fault, OpenAISimulator, SimServer


def test_each_resource_has_its_raw_responses():
    server, app = serve(
        image_answer(),
        (200, {"x-request-id": "req_v"}, video("video_1", "queued")),
        (200, {"x-request-id": "req_m"}, {"object": "list", "data": []}),
    )
    with server, ReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
        image = client.images.with_raw_response.generate(model="gpt-image-2", prompt="p")
        assert image.status_code == 200 and image.request_id == "req_1"
        assert image.parse().data[0].b64_json
        retrieved = client.videos.with_raw_response.retrieve("video_1")
        assert retrieved.request_id == "req_v" and retrieved.parse().status == "queued"
        models = client.models.with_raw_response.list()
        assert models.request_id == "req_m" and models.parse().data == []
    assert [seen.path for seen in app.seen] == [
        "/v1/images/generations",
        "/v1/videos/video_1",
        "/v1/models",
    ]


async def test_each_async_resource_has_its_raw_responses():
    server, _ = serve((200, {"x-request-id": "req_v"}, video("video_1", "queued")))
    with server:
        async with AsyncReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
            raw = await client.videos.with_raw_response.retrieve("video_1")
            assert raw.request_id == "req_v" and raw.parse().id == "video_1"


def test_raw_responses_of_a_resource_need_a_gateway(catalog):
    client = ReAPI(catalog=catalog, provider_keys={"primary": "k"})
    for resource in (client.images, client.videos, client.models):
        with pytest.raises(ConfigurationError, match="with_raw_response needs gateway mode"):
            resource.with_raw_response


def test_a_gateway_error_has_its_status_code():
    server, _ = serve(error_answer(401, "invalid_api_key", **{"x-request-id": "req_e"}))
    with server, ReAPI(base_url=server.base_url + "/v1", api_key="rk") as client:
        with pytest.raises(AuthenticationError) as info:
            client.models.list()
    assert info.value.status_code == 401 == info.value.status
    assert info.value.request_id == "req_e" and info.value.code == "invalid_api_key"


def test_an_in_process_error_has_the_providers_status_code_or_none(catalog):
    with SimServer(OpenAISimulator("sk-sim")) as sim:
        url = sim.base_url + "/v1"
        with ReAPI(
            catalog=catalog,
            provider_keys={"primary": "sk-wrong"},
            provider_base_urls={"primary": url},
        ) as client:
            with pytest.raises(NoRouteAvailableError) as failed:
                client.images.generate(model="gpt-image-2", prompt="p")
            with pytest.raises(InvalidRequestError) as refused:
                client.images.generate(model="gpt-image-2", prompt="p", size="13x13")
    assert failed.value.attempts[0].status == 401
    # What to catch on when the cause matters: the provider refused the key.
    assert isinstance(failed.value.last_error, AuthenticationError)
    assert failed.value.last_error.status_code == 401
    assert failed.value.last_error.__traceback__ is None  # its frames held the prompt
    assert failed.value.status_code is None  # no one answer: each attempt has its own
    assert refused.value.status_code is None  # refused before any call


async def test_the_async_client_closes_by_openai_pythons_name(catalog):
    pool = httpx.AsyncClient()
    client = AsyncReAPI(catalog=catalog, provider_keys={"primary": "k"}, http_client=pool)
    await client.close()
    assert pool.is_closed


@pytest.mark.parametrize("cls", [ReAPI, AsyncReAPI])
def test_an_api_key_without_a_gateway_is_refused_not_ignored(cls, monkeypatch):
    """`OpenAI(api_key="sk-...")` by habit: in-process the key was dropped unsaid, and the first
    call failed for want of OPENAI_API_KEY."""
    monkeypatch.delenv("REAPI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match=r"needs base_url=.*provider_keys=") as info:
        cls(api_key="sk-proj-abc")
    assert "sk-proj-abc" not in str(info.value)
    monkeypatch.setenv("REAPI_BASE_URL", "http://127.0.0.1:9/v1")
    assert cls(api_key="rk_live_x").mode == "gateway"


def _sim_client(sim, catalog, cls=ReAPI):
    url = sim.base_url + "/v1"
    return cls(
        catalog=catalog, provider_keys={"primary": "sk-sim"}, provider_base_urls={"primary": url}
    )


def test_videos_create_and_poll_and_poll(catalog):
    seen = []
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=2)) as sim:
        with _sim_client(sim, catalog) as client:
            done = client.videos.create_and_poll(
                model="sim-video",
                prompt="waves",
                seconds=4,
                size="1280x720",
                poll_interval_ms=20,
                on_progress=seen.append,
            )
            assert done.status == "completed" and done.size == "1280x720"
            assert seen[-1].status == "completed"
            again = client.videos.create(model="sim-video", prompt="waves", seconds=4)
            started = time.monotonic()
            assert client.videos.poll(again.id, poll_interval_ms=20).status == "completed"
            assert time.monotonic() - started < 1.5  # 20 ms between polls, not 2 s


async def test_async_videos_create_and_poll_returns_a_failed_video(catalog):
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=1)) as sim:
        sim.faults.set(Fault.TASK_FAILS)
        async with _sim_client(sim, catalog, AsyncReAPI) as client:
            done = await client.videos.create_and_poll(
                model="sim-video", prompt="waves", seconds=4, poll_interval_ms=20
            )
    # As openai-python's: a failed video is returned (its error says why), not raised.
    assert done.status == "failed" and done.error is not None
